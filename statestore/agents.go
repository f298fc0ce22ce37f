package statestore

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// AgentInfo is what the cluster knows of one agent from its heartbeats.
type AgentInfo struct {
	ID string
	// Service is the app the agent said it runs in; empty if it did not.
	Service  string
	LastSeen time.Time
	Degraded bool
}

func (s *Store) agentsKey() string { return s.prefix + ":agents" }

// Heartbeat records that an agent reported at now, and whether it said it
// was degraded. Callers throttle it; it is one HSET.
func (s *Store) Heartbeat(ctx context.Context, agent string, degraded bool, now time.Time) error {
	return s.HeartbeatOf(ctx, AgentInfo{ID: agent, LastSeen: now, Degraded: degraded})
}

// HeartbeatOf records an agent as Heartbeat does, with the service it
// named. Callers throttle it; it is one HSET.
func (s *Store) HeartbeatOf(ctx context.Context, a AgentInfo) error {
	// "<ms>:<degraded>[:<service>]": a service may hold colons, the rest
	// cannot.
	v := strconv.FormatInt(a.LastSeen.UnixMilli(), 10) + ":" + boolArg(a.Degraded)
	if a.Service != "" {
		v += ":" + a.Service
	}
	if err := s.rdb.HSet(ctx, s.agentsKey(), a.ID, v).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// Agents lists the agents heard from since the cutoff, and forgets the
// ones not heard from since forget.
func (s *Store) Agents(ctx context.Context, cutoff, forget time.Time) ([]AgentInfo, error) {
	all, err := s.rdb.HGetAll(ctx, s.agentsKey()).Result()
	if err != nil {
		return nil, wrapRedis(ctx, err)
	}
	var out []AgentInfo
	var stale []string
	for id, v := range all {
		msStr, rest, _ := strings.Cut(v, ":")
		deg, service, _ := strings.Cut(rest, ":")
		seen := time.UnixMilli(atoi(msStr))
		if seen.Before(forget) {
			stale = append(stale, id)
			continue
		}
		if !seen.Before(cutoff) {
			out = append(out, AgentInfo{ID: id, Service: service, LastSeen: seen, Degraded: deg == "1"})
		}
	}
	if len(stale) > 0 {
		_ = s.rdb.HDel(ctx, s.agentsKey(), stale...).Err()
	}
	return out, nil
}
