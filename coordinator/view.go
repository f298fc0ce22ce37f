package coordinator

import (
	"slices"
	"sync"

	"github.com/fusebox-io/fusebox/statestore"
)

// clusterView is the Loop's picture of the cluster, for /metrics: every
// breaker it knows (the registry, the configured names, and what the
// change channel named) and the state of the due ones (not closed, or
// overridden) as its last tick read them. A scrape reads it instead of
// Redis, so a scrape costs the same whatever the registry's size; it is
// as fresh as the change channel and the tick. Safe for concurrent use.
type clusterView struct {
	mu    sync.Mutex
	ready bool                           // guarded by mu; the Loop has read the registry once
	names []string                       // guarded by mu; sorted, never changed in place
	due   map[string]statestore.Snapshot // guarded by mu; never changed in place
}

// set replaces the view. names must not change afterwards (the Loop
// copies on write); due is copied.
func (v *clusterView) set(names []string, due map[string]statestore.Snapshot) {
	d := make(map[string]statestore.Snapshot, len(due))
	for k, s := range due {
		d[k] = s
	}
	v.mu.Lock()
	v.ready, v.names, v.due = true, names, d
	v.mu.Unlock()
}

// get returns the view; ok is false until the Loop has read the
// registry.
func (v *clusterView) get() (names []string, due map[string]statestore.Snapshot, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.names, v.due, v.ready
}

// stateSeries are the breakers to give a fusebox_breaker_state series,
// at most limit: the due ones first, then the closed ones, each by name;
// and how many breakers were left out.
func stateSeries(names []string, due map[string]statestore.Snapshot, limit int) (out []statestore.Snapshot, omitted int) {
	dueNames := make([]string, 0, len(due))
	for n := range due {
		dueNames = append(dueNames, n)
	}
	slices.Sort(dueNames)
	total := len(names)
	for _, n := range dueNames {
		if _, found := slices.BinarySearch(names, n); !found {
			total++
		}
	}
	for _, n := range dueNames {
		if len(out) == limit {
			break
		}
		out = append(out, due[n])
	}
	for _, n := range names {
		if len(out) == limit {
			break
		}
		if _, isDue := due[n]; !isDue {
			out = append(out, statestore.Snapshot{Name: n, State: statestore.StateClosed})
		}
	}
	return out, total - len(out)
}
