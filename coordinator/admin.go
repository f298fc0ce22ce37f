package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fusebox-io/fusebox/statestore"
)

// ErrNotFound is returned for a breaker that is neither configured, nor
// registered, nor in Redis.
var ErrNotFound = errors.New("coordinator: no such breaker")

// Breaker is one breaker as the admin API shows it.
type Breaker struct {
	statestore.Detail
	Policy    statestore.Policy
	HasCanary bool
}

// Page is one page of the breaker list, sorted by name.
type Page struct {
	Breakers []Breaker
	// Next is the cursor of the next page; empty on the last one.
	Next string
}

// DefaultPageSize and MaxPageSize bound a page of Breakers.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Breakers lists the known breakers (registered or configured), sorted
// by name: up to limit of them (0: DefaultPageSize) after the cursor
// (empty: from the first). The order is stable, so a cursor stays good
// while breakers come and go: a page starts after its cursor's name. A
// page reads the registry's index from the cursor on (one command) and
// the page's breakers, whatever the registry's size.
func (s *Service) Breakers(ctx context.Context, cursor string, limit int) (Page, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if limit > MaxPageSize || (cursor != "" && !statestore.ValidName(cursor)) {
		return Page{}, fmt.Errorf("%w: page: limit 1-%d, cursor a breaker name", statestore.ErrInvalid, MaxPageSize)
	}
	// One more than the page, to know whether another follows; the
	// configured names too (registered at start, but Redis may have
	// lost the registry since).
	reg, err := s.store.RegistryPage(ctx, cursor, limit+1)
	if err != nil {
		return Page{}, err
	}
	conf := s.policies.Names()
	i, found := slices.BinarySearch(conf, cursor)
	if found {
		i++
	}
	names := append(slices.Clip(reg), conf[i:min(i+limit+1, len(conf))]...)
	slices.Sort(names)
	names = slices.Compact(names)
	page := names[:min(limit, len(names))]
	ds, err := s.store.Details(ctx, page)
	if err != nil {
		return Page{}, err
	}
	out := Page{Breakers: make([]Breaker, len(ds))}
	for i, d := range ds {
		out.Breakers[i] = s.view(d)
	}
	if len(names) > limit {
		out.Next = page[len(page)-1]
	}
	return out, nil
}

// Breaker returns one breaker, or ErrNotFound.
func (s *Service) Breaker(ctx context.Context, name string) (Breaker, error) {
	if !statestore.ValidName(name) {
		return Breaker{}, statestore.ErrInvalidName
	}
	ds, err := s.store.Details(ctx, []string{name})
	if err != nil {
		return Breaker{}, err
	}
	if !ds[0].Exists && !s.configured(name) {
		registered, err := s.store.Registered(ctx, name)
		if err != nil {
			return Breaker{}, err
		}
		if !registered {
			return Breaker{}, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
	}
	return s.view(ds[0]), nil
}

func (s *Service) view(d statestore.Detail) Breaker {
	_, canary := s.cfg.Canaries[d.Name]
	return Breaker{Detail: d, Policy: s.policies.Policy(d.Name), HasCanary: canary}
}

// Force sets an operator override on a breaker (creating it if no agent
// has reported it yet). ttl 0 keeps it until released.
func (s *Service) Force(ctx context.Context, name string, o statestore.Override, ttl time.Duration, actor, reason string) (statestore.Result, error) {
	return s.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return s.store.Force(ctx, name, p, actor, o, ttl, reason)
	})
}

// Release ends an override.
func (s *Service) Release(ctx context.Context, name, actor, reason string) (statestore.Result, error) {
	return s.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return s.store.Release(ctx, name, p, actor, reason)
	})
}

// Reset closes a breaker with fresh counters and no override.
func (s *Service) Reset(ctx context.Context, name, actor, reason string) (statestore.Result, error) {
	return s.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return s.store.Reset(ctx, name, p, actor, reason)
	})
}

// Delete forgets a breaker (statestore.Store.Delete): its state and
// journal go, its name leaves the registry, and the last event, deleted,
// is published and logged with actor and reason. Agents still using it
// see it closed and create it again with their next report. A breaker
// the config names stays listed, closed. ErrNotFound if unknown.
func (s *Service) Delete(ctx context.Context, name, actor, reason string) (statestore.Result, error) {
	if _, err := s.Breaker(ctx, name); err != nil {
		return statestore.Result{}, err
	}
	res, err := s.store.Delete(ctx, name, s.policies.Policy(name), actor, reason)
	if err != nil {
		return res, err
	}
	s.known.forget(name)
	s.logTransition(res)
	return res, nil
}

func (s *Service) admin(ctx context.Context, name string, do func(statestore.Policy) (statestore.Result, error)) (statestore.Result, error) {
	if !statestore.ValidName(name) {
		return statestore.Result{}, statestore.ErrInvalidName
	}
	// Operators' breakers count against no agent.
	if err := s.store.Register(ctx, name); err != nil {
		return statestore.Result{}, err
	}
	s.noteRegistered(name)
	res, err := do(s.policies.Policy(name))
	if err != nil {
		return res, err
	}
	s.logTransition(res)
	return res, nil
}

// Events returns a breaker's journal, newest first, before the event id
// before (empty: from the newest).
func (s *Service) Events(ctx context.Context, name string, count int64, before string) ([]statestore.Event, error) {
	return s.store.Events(ctx, name, count, before)
}

// EventsSince returns every breaker's events after the cursor, oldest
// first (see statestore.Store.EventsSince).
func (s *Service) EventsSince(ctx context.Context, after statestore.EventCursor, count int64) ([]statestore.Event, error) {
	names, err := s.names(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.EventsSince(ctx, names, after, count)
}

// Agents lists the agents heard from in the last 30 seconds.
func (b *base) Agents(ctx context.Context) ([]statestore.AgentInfo, error) {
	now := time.Now()
	return b.store.Agents(ctx, now.Add(-30*time.Second), now.Add(-time.Hour))
}

// Subscribe returns a channel of every event this coordinator hears on
// the change channel from now on, and a function that ends the
// subscription (call it once). A listener that falls 256 events behind
// is dropped: its channel is closed, and it resumes from its last event
// id like any reconnecting client. The Loop's watch feeds it; it never
// waits for the timer.
func (s *Service) Subscribe() (<-chan statestore.Event, func()) { return s.hub.subscribe() }
