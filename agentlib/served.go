package agentlib

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/fusebox-io/fusebox/report"
)

// CountServed counts one answer served by route, and whether a fallback
// served it (a provider that was not the route's first choice); the
// counts ride in the agent's next report, and the dashboard shows each
// route's fallback share. A sidecar calls it once per answer. It is
// lock-free and allocates nothing once a route has been seen: a map read
// and one atomic add. A name outside A-Z a-z 0-9 . _ - has those
// characters replaced by _ (cut to 128); past report.MaxRoutes distinct
// routes the rest are not counted (logged once). Safe on a nil Agent.
func (a *Agent) CountServed(route string, fallback bool) {
	if a == nil {
		return
	}
	c := a.served.counter(route)
	if c == nil {
		if c = a.served.add(route); c == nil {
			if a.served.warned.CompareAndSwap(false, true) {
				a.log.Warn().Str("route", route).Int("max_routes", report.MaxRoutes).Msg("too many routes: the rest are not counted")
			}
			return
		}
	}
	// Served in the high 32 bits, fallbacks in the low: one add, and a
	// report never holds more fallbacks than answers.
	d := uint64(1) << 32
	if fallback {
		d++
	}
	c.n.Add(d)
}

// servedRoutes holds a counter per route. The hot path reads an
// immutable map; a new route copies it under mu.
type servedRoutes struct {
	byName atomic.Pointer[map[string]*routeCounter]
	warned atomic.Bool

	mu     sync.Mutex
	byWire map[string]*routeCounter // guarded by mu; by the name reports carry
}

type routeCounter struct {
	name string // as reports carry it
	n    atomic.Uint64
}

func (r *servedRoutes) counter(route string) *routeCounter {
	if m := r.byName.Load(); m != nil {
		return (*m)[route]
	}
	return nil
}

// add makes route's counter (two names that read the same once cleaned
// share one), or returns nil past report.MaxRoutes.
func (r *servedRoutes) add(route string) *routeCounter {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := map[string]*routeCounter{}
	if m := r.byName.Load(); m != nil {
		if c := (*m)[route]; c != nil {
			return c
		}
		old = *m
	}
	wire := wireName(route)
	c := r.byWire[wire]
	if c == nil {
		if len(r.byWire) >= report.MaxRoutes {
			return nil
		}
		if r.byWire == nil {
			r.byWire = map[string]*routeCounter{}
		}
		c = &routeCounter{name: wire}
		r.byWire[wire] = c
	}
	m := make(map[string]*routeCounter, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[route] = c
	r.byName.Store(&m)
	return c
}

// take returns what each route served since the last take, sorted by
// name, and starts again from zero.
func (r *servedRoutes) take() []report.Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []report.Route
	for _, c := range r.byWire {
		v := c.n.Swap(0)
		if v == 0 {
			continue
		}
		out = append(out, report.Route{Name: c.name, Served: int64(v >> 32), Fallback: int64(v & (1<<32 - 1))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// wireName is route with every character a report does not take
// replaced by _, cut to 128 bytes, with an "r" in front of one that does
// not start with a letter or digit (an empty one is "r").
func wireName(route string) string {
	b := []byte(route)
	if len(b) > 128 {
		b = b[:128]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z' || b[0] >= '0' && b[0] <= '9') {
		b = append([]byte("r"), b...)
		if len(b) > 128 {
			b = b[:128]
		}
	}
	return string(b)
}
