package statestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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
	args := make([]any, 0, 5+len(names))
	args = append(args, agent, strconv.Itoa(lim.MaxBreakers), strconv.Itoa(lim.MaxPerAgent), announce, registryLogKeep)
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
	args := make([]any, 0, 1+len(names))
	args = append(args, registryLogKeep)
	for _, n := range names {
		args = append(args, n)
	}
	if err := unregisterScript.Run(ctx, s.rdb, s.registryKeys(), args...).Err(); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// Names lists the registered breakers, sorted: the whole registry, in one
// reply. Readers that follow the registry read it once and then only its
// changes (RegistryChanges); a page of it is RegistryPage.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.registryKey()).Result()
	if err != nil {
		return nil, wrapRedis(ctx, err)
	}
	slices.Sort(names)
	return names, nil
}

// Registered reports whether name is in the registry.
func (s *Store) Registered(ctx context.Context, name string) (bool, error) {
	if !ValidName(name) {
		return false, ErrInvalidName
	}
	in, err := s.rdb.SIsMember(ctx, s.registryKey(), name).Result()
	if err != nil {
		return false, wrapRedis(ctx, err)
	}
	return in, nil
}

// RegistryPage lists up to limit registered names after the name after
// (empty: from the first), sorted, from the registry's index: one
// command whatever the registry's size.
func (s *Store) RegistryPage(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 || (after != "" && !ValidName(after)) {
		return nil, fmt.Errorf("%w: page after %q, limit %d", ErrInvalid, after, limit)
	}
	from := "-"
	if after != "" {
		from = "(" + after
	}
	names, err := s.rdb.ZRangeByLex(ctx, s.registryKeys()[3], &redis.ZRangeBy{Min: from, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, wrapRedis(ctx, err)
	}
	return names, nil
}

// registryLogKeep is how many generations of changes the registry's log
// keeps: a reader further behind reads the whole registry again.
const registryLogKeep = 1000

// RegistryCursor is where a reader of the registry's changes stands. The
// zero value has read nothing.
type RegistryCursor struct {
	gen   int64
	valid bool
}

// RegistryChanges is what changed in the registry since a cursor.
type RegistryChanges struct {
	// Added and Removed are the names registered and unregistered since
	// the cursor, each the net effect of every change in between: a name
	// added and then removed is in Removed only.
	Added, Removed []string
	// Reread says the changes cannot be told: the cursor is the zero
	// value or older than the log keeps, Redis lost the registry, or the
	// index was rebuilt (names came or went without the log). Read the
	// whole registry (Names) after this call.
	Reread bool
	// Cursor is where the next call starts.
	Cursor RegistryCursor
}

// RegistryChanges reads what changed in the registry since cur: in the
// steady state one round trip of three O(1) commands, whatever the
// registry's size (the generation, and the sizes of the set and its
// index); otherwise the log's entries since cur. When the set and the
// index disagree (a coordinator of a version that kept no index changed
// the set, or Redis lost one of them) it rebuilds the index, once, and
// answers Reread.
func (s *Store) RegistryChanges(ctx context.Context, cur RegistryCursor) (RegistryChanges, error) {
	keys := s.registryKeys()
	// One transaction: a registration between the two sizes would look
	// like a disagreement.
	pipe := s.rdb.TxPipeline()
	genCmd := pipe.Get(ctx, keys[4])
	setN := pipe.SCard(ctx, keys[0])
	idxN := pipe.ZCard(ctx, keys[3])
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return RegistryChanges{}, wrapRedis(ctx, err)
	}
	gen, _ := strconv.ParseInt(genCmd.Val(), 10, 64)
	if setN.Val() != idxN.Val() {
		r, err := reindexScript.Run(ctx, s.rdb, keys, registryLogKeep).Int64Slice()
		if err != nil {
			return RegistryChanges{}, wrapRedis(ctx, err)
		}
		if len(r) != 2 {
			return RegistryChanges{}, fmt.Errorf("%w: reindex reply has %d fields, want 2", ErrUnavailable, len(r))
		}
		return RegistryChanges{Reread: true, Cursor: RegistryCursor{gen: r[1], valid: true}}, nil
	}
	out := RegistryChanges{Cursor: RegistryCursor{gen: gen, valid: true}}
	switch {
	case !cur.valid || gen < cur.gen:
		out.Reread = true
		return out, nil
	case gen == cur.gen:
		return out, nil
	}
	entries, err := s.rdb.ZRangeByScore(ctx, keys[5], &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(cur.gen, 10), Max: strconv.FormatInt(gen, 10),
	}).Result()
	if err != nil {
		return RegistryChanges{}, wrapRedis(ctx, err)
	}
	if int64(len(entries)) != gen-cur.gen {
		out.Reread = true // the log no longer reaches back to cur
		return out, nil
	}
	net := map[string]bool{} // name -> registered after the last change
	var order []string
	for _, e := range entries {
		_, rest, _ := strings.Cut(e, " ")
		op, list, _ := strings.Cut(rest, " ")
		if op != "+" && op != "-" {
			out.Reread = true // "*": the index was rebuilt
			return out, nil
		}
		for _, n := range strings.Split(list, ",") {
			if _, seen := net[n]; !seen {
				order = append(order, n)
			}
			net[n] = op == "+"
		}
	}
	for _, n := range order {
		if net[n] {
			out.Added = append(out.Added, n)
		} else {
			out.Removed = append(out.Removed, n)
		}
	}
	return out, nil
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
