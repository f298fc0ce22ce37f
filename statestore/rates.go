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

// RateSeconds is how many seconds of calls and failures report.lua keeps
// per breaker and Rates returns.
const RateSeconds = 60

// Rates is one breaker's calls and failures per second, as agents
// reported them: report.lua counts every part but repeats, whatever the
// policy (a rate rule's window is kept apart, as before).
type Rates struct {
	Name string
	// End is the second of the last bucket, by Redis's clock when read:
	// that bucket is still filling (successes arrive up to 2 s late).
	End time.Time
	// Calls and Failures per second, oldest first, RateSeconds of them,
	// the last one End's. Calls are ok + fail + hung; failures fail +
	// hung.
	Calls, Failures []int64
}

// Rates reads the named breakers' per-second calls and failures in one
// pipelined round trip. A breaker nobody reported, or not for a minute,
// has zeros.
func (s *Store) Rates(ctx context.Context, names []string) ([]Rates, error) {
	out := make([]Rates, len(names))
	if len(names) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	timeCmd := pipe.Time(ctx)
	cmds := make([]*redis.SliceCmd, len(names))
	for i, n := range names {
		if !ValidName(n) {
			return nil, ErrInvalidName
		}
		cmds[i] = pipe.HMGet(ctx, s.stateKey(n), "rs", "rc", "rf", "rb", "rh")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedis(ctx, err)
	}
	now := timeCmd.Val().Unix()
	for i, n := range names {
		out[i] = decodeRates(n, now, cmds[i].Val())
	}
	return out, nil
}

// decodeRates lays report.lua's fields out on the RateSeconds seconds
// ending at now: rs is the newest second with calls (rc, rf), rh the
// seconds rb .. rs-1 as "calls,failures" words.
func decodeRates(name string, now int64, v []any) Rates {
	r := Rates{Name: name, End: time.Unix(now, 0), Calls: make([]int64, RateSeconds), Failures: make([]int64, RateSeconds)}
	if len(v) != 5 || v[0] == nil {
		return r
	}
	first := now - RateSeconds + 1
	put := func(sec int64, calls, fails string) {
		if sec < first || sec > now {
			return
		}
		r.Calls[sec-first], r.Failures[sec-first] = atoi(calls), atoi(fails)
	}
	rs := atoi(str(v[0]))
	put(rs, str(v[1]), str(v[2]))
	sec := atoi(str(v[3]))
	for w := range strings.FieldsSeq(str(v[4])) {
		c, f, _ := strings.Cut(w, ",")
		if sec >= rs {
			break
		}
		put(sec, c, f)
		sec++
	}
	return r
}

// Timeline is one breaker's journal over a span of time.
type Timeline struct {
	Name string
	// Events are the breaker's events since the span began, oldest first.
	Events []Event
	// Truncated says more events happened in the span than were read:
	// Events are the newest of them.
	Truncated bool
}

// Timelines reads the named breakers' events since the time given, at
// most limit per breaker (the newest), in one pipelined round trip. The
// journal is capped per breaker (Options.EventsCap): a timeline reaches
// as far back as it does.
func (s *Store) Timelines(ctx context.Context, names []string, since time.Time, limit int64) ([]Timeline, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: a timeline needs a positive limit", ErrInvalid)
	}
	out := make([]Timeline, len(names))
	if len(names) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(names))
	lo := strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	for i, n := range names {
		if !ValidName(n) {
			return nil, ErrInvalidName
		}
		cmds[i] = pipe.XRevRangeN(ctx, s.eventsKey(n), "+", lo, limit+1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedis(ctx, err)
	}
	for i, n := range names {
		evs := decodeEvents(cmds[i].Val())
		tl := Timeline{Name: n}
		if int64(len(evs)) > limit {
			evs, tl.Truncated = evs[:limit], true
		}
		slices.Reverse(evs)
		tl.Events = evs
		out[i] = tl
	}
	return out, nil
}
