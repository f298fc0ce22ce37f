package statestore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Detail is everything an operator wants to see about one breaker.
type Detail struct {
	Snapshot
	// Exists is false when the breaker has no state in Redis (never
	// reported, or lost with Redis's data): it is closed.
	Exists bool
	// OpenUntil is when an open breaker goes half-open (Redis's clock);
	// zero unless open.
	OpenUntil time.Time
	// OverrideUntil is when a timed override ends; zero for none.
	OverrideUntil time.Time
	// FailureCount is the cluster-wide consecutive failure count.
	FailureCount int64
	// Window* are the rolling window's totals (kept when a rate rule is on).
	WindowCalls, WindowFailures, WindowSlow int64
	LastError                               string
	// Reason, Actor and ChangedAt describe the last transition.
	Reason    string
	Actor     string
	ChangedAt time.Time
	// SeenAt is when an agent last reported it (Redis's clock); zero if
	// none has since it was created. The retention expiry reads it.
	SeenAt time.Time
}

// Details reads the named breakers' details in one pipelined round trip.
func (s *Store) Details(ctx context.Context, names []string) ([]Detail, error) {
	out := make([]Detail, len(names))
	if len(names) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	timeCmd := pipe.Time(ctx)
	states := make([]*redis.MapStringStringCmd, len(names))
	windows := make([]*redis.SliceCmd, len(names))
	for i, n := range names {
		if !ValidName(n) {
			return nil, ErrInvalidName
		}
		k := s.keys(n)
		states[i] = pipe.HGetAll(ctx, k[0])
		windows[i] = pipe.HMGet(ctx, k[2], "n", "f", "sl")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedis(ctx, err)
	}
	now := timeCmd.Val().UnixMilli()
	ms := func(v string) time.Time {
		if n := atoi(v); n > 0 {
			return time.UnixMilli(n)
		}
		return time.Time{}
	}
	for i, n := range names {
		h := states[i].Val()
		d := Detail{Snapshot: Snapshot{Name: n, State: StateClosed}, SeenAt: ms(h["seen_at"])}
		if st, ok := h["state"]; ok {
			d.Exists = true
			d.State = State(st)
			d.Override = Override(h["override"])
			d.Version = atoi(h["version"])
			d.Epoch = atoi(h["epoch"])
			d.Gen = h["gen"]
			d.FailureCount = atoi(h["consec"])
			d.LastError = h["last_error"]
			d.Reason = h["reason"]
			d.Actor = h["actor"]
			d.ChangedAt = ms(h["changed_at"])
			if d.Override == OverrideNone && d.State == StateOpen {
				d.OpenUntil = ms(h["open_until"])
			}
			if d.Override != OverrideNone {
				d.OverrideUntil = ms(h["override_until"])
			}
			d.RetryInMS = retryInMS(d.State, d.Override, atoi(h["open_until"]), atoi(h["override_until"]), now)
		}
		if w := windows[i].Val(); len(w) == 3 {
			d.WindowCalls, d.WindowFailures, d.WindowSlow = atoi(str(w[0])), atoi(str(w[1])), atoi(str(w[2]))
		}
		out[i] = d
	}
	return out, nil
}
