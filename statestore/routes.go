package statestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxRoutes bounds the routes Routes returns (those that served most).
const MaxRoutes = 256

// routesTTL keeps a second's route counts a little longer than
// RateSeconds.
const routesTTL = 2 * RateSeconds * time.Second

// RouteCount is what one route served (agents' reports, summed).
type RouteCount struct {
	Route string
	// Served answers; Fallback of them by a provider that was not the
	// route's first choice.
	Served, Fallback int64
}

// routesKey is the hash of one second's route counts. Every second's
// key shares one hash tag, outside every breaker's: one Redis Cluster
// slot, touched by no breaker script.
func (s *Store) routesKey(sec int64) string {
	return "{" + s.prefix + ":routes}:" + strconv.FormatInt(sec, 10)
}

// CountRoutes adds counts to the second of at (the caller's clock: every
// coordinator's, which NTP keeps within a second of each other), in one
// pipelined round trip. Names must be valid breaker names.
func (s *Store) CountRoutes(ctx context.Context, at time.Time, counts []RouteCount) error {
	if len(counts) == 0 {
		return nil
	}
	key := s.routesKey(at.Unix())
	pipe := s.rdb.Pipeline()
	for _, c := range counts {
		if !ValidName(c.Route) {
			return ErrInvalidName
		}
		if c.Served < 0 || c.Fallback < 0 {
			return fmt.Errorf("%w: negative route count", ErrInvalid)
		}
		if c.Served > 0 {
			pipe.HIncrBy(ctx, key, c.Route+"|s", c.Served)
		}
		if c.Fallback > 0 {
			pipe.HIncrBy(ctx, key, c.Route+"|f", c.Fallback)
		}
	}
	pipe.Expire(ctx, key, routesTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return wrapRedis(ctx, err)
	}
	return nil
}

// RouteRates is one route's answers per second.
type RouteRates struct {
	Route string
	// End is the second of the last bucket (the caller's clock).
	End time.Time
	// Served and Fallback per second, oldest first, RateSeconds of them.
	Served, Fallback []int64
}

// Routes reads the last RateSeconds seconds of route counts up to now
// (the caller's clock), sorted by route name: at most MaxRoutes routes,
// those that served most.
func (s *Store) Routes(ctx context.Context, now time.Time) ([]RouteRates, error) {
	end := now.Unix()
	first := end - RateSeconds + 1
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, RateSeconds)
	for i := range cmds {
		cmds[i] = pipe.HGetAll(ctx, s.routesKey(first+int64(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedis(ctx, err)
	}
	byName := map[string]*RouteRates{}
	for i, c := range cmds {
		for field, v := range c.Val() {
			name, kind, ok := strings.Cut(field, "|")
			if !ok || !ValidName(name) || (kind != "s" && kind != "f") {
				continue
			}
			r := byName[name]
			if r == nil {
				if len(byName) >= 4*MaxRoutes {
					continue // a flood of names: the first ones seen are enough
				}
				r = &RouteRates{Route: name, End: time.Unix(end, 0), Served: make([]int64, RateSeconds), Fallback: make([]int64, RateSeconds)}
				byName[name] = r
			}
			if kind == "s" {
				r.Served[i] += atoi(v)
			} else {
				r.Fallback[i] += atoi(v)
			}
		}
	}
	out := make([]RouteRates, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	if len(out) > MaxRoutes {
		total := func(r RouteRates) (n int64) {
			for _, v := range r.Served {
				n += v
			}
			return n
		}
		slices.SortFunc(out, func(a, b RouteRates) int {
			return cmp.Or(cmp.Compare(total(b), total(a)), strings.Compare(a.Route, b.Route))
		})
		out = out[:MaxRoutes]
	}
	slices.SortFunc(out, func(a, b RouteRates) int { return strings.Compare(a.Route, b.Route) })
	return out, nil
}
