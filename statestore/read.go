package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Snapshots reads the state of the named breakers in one pipelined round
// trip (one per node in Redis Cluster). A breaker with no state in Redis
// comes back closed with version 0 and an empty Gen.
func (s *Store) Snapshots(ctx context.Context, names []string) ([]Snapshot, error) {
	entries, err := s.read(ctx, names, false, false)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, len(entries))
	for i, e := range entries {
		out[i] = e.Snapshot
	}
	return out, nil
}

// MirrorEntry is what an agent mirrors of one breaker: its snapshot and
// the policy its coordinators last applied (nil when none has yet).
type MirrorEntry struct {
	Snapshot
	Policy *Policy
}

// ReadMirror is Snapshots plus each breaker's policy, in the same round
// trip: what an agent's resync needs.
func (s *Store) ReadMirror(ctx context.Context, names []string) ([]MirrorEntry, error) {
	return s.ReadMirrorWith(ctx, names, MirrorRead{Defaults: true})
}

// MirrorRead says what ReadMirrorWith reads besides the breakers' states
// and their own policies.
type MirrorRead struct {
	// Defaults reads the policy of breakers not configured by name too;
	// without it, a breaker with no policy of its own comes back with none.
	Defaults bool
}

// ReadMirrorWith is ReadMirror, reading the default policy only when
// asked: an agent's steady resync is one HMGET per breaker (and TIME only
// when one is open), a cost that does not grow with its traffic.
func (s *Store) ReadMirrorWith(ctx context.Context, names []string, what MirrorRead) ([]MirrorEntry, error) {
	return s.read(ctx, names, true, what.Defaults)
}

func (s *Store) read(ctx context.Context, names []string, withPolicy, withDefaults bool) ([]MirrorEntry, error) {
	out := make([]MirrorEntry, len(names))
	if len(names) == 0 {
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			return nil, wrapRedis(ctx, err)
		}
		return out, nil
	}
	fields := []string{"state", "override", "version", "epoch", "gen", "open_until", "override_until"}
	if withPolicy {
		fields = append(fields, "policy")
	}
	pipe := s.rdb.Pipeline()
	var defCmd *redis.StringCmd
	if withPolicy && withDefaults {
		defCmd = pipe.Get(ctx, s.defaultPolicyKey())
	}
	cmds := make([]*redis.SliceCmd, len(names))
	for i, n := range names {
		if !ValidName(n) {
			return nil, ErrInvalidName
		}
		cmds[i] = pipe.HMGet(ctx, s.stateKey(n), fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedis(ctx, err)
	}
	// Redis's clock, for how long until an open breaker half-opens: read
	// only when one is open (the steady state needs no TIME).
	var now int64
	for _, c := range cmds {
		if v := c.Val(); len(v) == len(fields) && v[0] != nil && (str(v[0]) == string(StateOpen) || str(v[1]) == string(OverrideOpen)) {
			t, err := s.rdb.Time(ctx).Result()
			if err != nil {
				return nil, wrapRedis(ctx, err)
			}
			now = t.UnixMilli()
			break
		}
	}
	var def *Policy
	if defCmd != nil {
		def = decodePolicy(defCmd.Val())
	}
	for i, c := range cmds {
		v := c.Val()
		sn := Snapshot{Name: names[i], State: StateClosed}
		pol := def
		if len(v) == len(fields) && v[0] != nil {
			sn.State = State(str(v[0]))
			sn.Override = Override(str(v[1]))
			sn.Version = atoi(str(v[2]))
			sn.Epoch = atoi(str(v[3]))
			sn.Gen = str(v[4])
			sn.RetryInMS = retryInMS(sn.State, sn.Override, atoi(str(v[5])), atoi(str(v[6])), now)
		}
		if withPolicy && len(v) == len(fields) {
			// A configured breaker's policy is there before its first
			// outcome (SeedPolicy); the rest get the defaults.
			if p := decodePolicy(str(v[7])); p != nil {
				pol = p
			}
		}
		if !withPolicy {
			pol = nil
		}
		out[i] = MirrorEntry{Snapshot: sn, Policy: pol}
	}
	return out, nil
}

func decodePolicy(js string) *Policy {
	if js == "" {
		return nil
	}
	var p Policy
	if json.Unmarshal([]byte(js), &p) != nil {
		return nil
	}
	return &p
}

// SeedPolicy writes a breaker's policy where agents read it, without
// creating its state: agents know a configured breaker's policy before
// any outcome was reported. Every script writes it again.
func (s *Store) SeedPolicy(ctx context.Context, name string, p Policy) error {
	if !ValidName(name) {
		return ErrInvalidName
	}
	js, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%w: policy: %w", ErrInvalid, err)
	}
	if err := s.rdb.HSet(ctx, s.stateKey(name), "policy", string(js)).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// SetDefaultPolicy writes the policy of every breaker not configured by
// name, for agents.
func (s *Store) SetDefaultPolicy(ctx context.Context, p Policy) error {
	js, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%w: policy: %w", ErrInvalid, err)
	}
	if err := s.rdb.Set(ctx, s.defaultPolicyKey(), string(js), 0).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// Policy reads the policy last written for a breaker by a coordinator, for
// agents that need it for their local breakers. ok is false when no
// coordinator has written one yet.
func (s *Store) Policy(ctx context.Context, name string) (p Policy, ok bool, err error) {
	if !ValidName(name) {
		return Policy{}, false, ErrInvalidName
	}
	js, err := s.rdb.HGet(ctx, s.stateKey(name), "policy").Result()
	if errors.Is(err, redis.Nil) {
		return Policy{}, false, nil
	}
	if err != nil {
		return Policy{}, false, wrapRedis(ctx, err)
	}
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		return Policy{}, false, fmt.Errorf("%w: stored policy of %s: %w", ErrUnavailable, name, err)
	}
	return p, true, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
