package statestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ErrLimit is wrapped by the *LimitError RegisterFor returns when a
// registration limit refuses new breakers.
var ErrLimit = errors.New("statestore: registration limit reached")

// Limits bound how many breakers agents may create. A zero field is no
// limit.
type Limits struct {
	// MaxBreakers bounds the registry: agents may not register a new
	// breaker past it (configured breakers and operators' always are).
	MaxBreakers int
	// MaxPerAgent bounds the breakers one agent (by its report's agent
	// id) has registered and that are still registered.
	MaxPerAgent int
}

// LimitError says which limit refused a registration.
type LimitError struct {
	// Limit is the setting's name: max_breakers or max_breakers_per_agent.
	Limit   string
	Max     int
	Current int
	Agent   string
	// New is how many unregistered names the refused call named.
	New int
}

func (e *LimitError) Error() string {
	if e.Limit == "max_breakers_per_agent" {
		return fmt.Sprintf("agent %s has registered %d breakers and asks for %d new: over max_breakers_per_agent (%d)", e.Agent, e.Current, e.New, e.Max)
	}
	return fmt.Sprintf("%d breakers registered, %d new asked for: over max_breakers (%d)", e.Current, e.New, e.Max)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

// Register adds names to the registry of known breakers, which the
// coordinators' timers walk, without counting them against any agent
// (configured breakers, operators' overrides). It is idempotent.
func (s *Store) Register(ctx context.Context, names ...string) error {
	return s.RegisterFor(ctx, "", Limits{}, names...)
}

// RegisterFor adds names an agent reported to the registry, within lim:
// a name already registered always passes; new ones count against the
// agent and the registry's size, and if they do not all fit none is
// registered and the error is a *LimitError.
func (s *Store) RegisterFor(ctx context.Context, agent string, lim Limits, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	announce := ""
	if s.sharded {
		announce = s.registryChannel()
	}
	args := make([]any, 0, 4+len(names))
	args = append(args, agent, strconv.Itoa(lim.MaxBreakers), strconv.Itoa(lim.MaxPerAgent), announce)
	for _, n := range names {
		if !ValidName(n) {
			return ErrInvalidName
		}
		args = append(args, n)
	}
	r, err := registerScript.Run(ctx, s.rdb, s.registryKeys(), args...).Int64Slice()
	if err != nil {
		return wrapRedis(ctx, err)
	}
	if len(r) != 3 {
		return fmt.Errorf("%w: register reply has %d fields, want 3", ErrUnavailable, len(r))
	}
	switch r[0] {
	case 0:
		return nil
	case 1:
		return &LimitError{Limit: "max_breakers", Current: int(r[1]), Max: int(r[2]), Agent: agent, New: s.countNew(ctx, names)}
	default:
		return &LimitError{Limit: "max_breakers_per_agent", Current: int(r[1]), Max: int(r[2]), Agent: agent, New: s.countNew(ctx, names)}
	}
}

// countNew is how many of names are not registered, for an error
// message only.
func (s *Store) countNew(ctx context.Context, names []string) int {
	members := make([]any, len(names))
	for i, n := range names {
		members[i] = n
	}
	in, err := s.rdb.SMIsMember(ctx, s.registryKey(), members...).Result()
	if err != nil {
		return len(names)
	}
	n := 0
	for _, b := range in {
		if !b {
			n++
		}
	}
	return n
}

// Unregister removes names from the registry; each goes back to the
// agent that registered it.
func (s *Store) Unregister(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	if err := unregisterScript.Run(ctx, s.rdb, s.registryKeys(), args...).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// Names lists the registered breakers, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.registryKey()).Result()
	if err != nil {
		return nil, wrapRedis(ctx, err)
	}
	slices.Sort(names)
	return names, nil
}

// Delete forgets a breaker: its state, window, permit and journal are
// deleted and its name leaves the registry. The last event, deleted
// (actor and reason as given), is published with the state agents are
// left with: closed, version 0, no gen; their next report creates the
// breaker again, in a new incarnation. Result.Gone is set.
func (s *Store) Delete(ctx context.Context, name string, p Policy, actor, reason string) (Result, error) {
	return s.forget(ctx, name, p, actor, "delete", 0, reason)
}

// Expire forgets a breaker as Delete does, with the event expired, if no
// agent reported it and nothing changed it for retention and no override
// is in effect; Result.Gone says whether it did. A breaker with no state
// at all goes without an event.
func (s *Store) Expire(ctx context.Context, name string, p Policy, actor string, retention time.Duration) (Result, error) {
	if retention <= 0 {
		return Result{}, fmt.Errorf("%w: retention must be positive", ErrInvalid)
	}
	return s.forget(ctx, name, p, actor, "expire", retention, "no report for "+retention.String())
}

func (s *Store) forget(ctx context.Context, name string, p Policy, actor, mode string, retention time.Duration, reason string) (Result, error) {
	if !ValidName(name) {
		return Result{}, ErrInvalidName
	}
	keys := append(s.keys(name), s.failersKey(name))
	res, err := s.runKeys(ctx, forgetScript, name, keys, p, actor, mode, strconv.FormatInt(retention.Milliseconds(), 10), reason)
	if err != nil || !res.Gone {
		return res, err
	}
	if err := s.Unregister(ctx, name); err != nil {
		return res, err
	}
	return res, nil
}
