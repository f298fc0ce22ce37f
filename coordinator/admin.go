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

// Breakers lists every known breaker: configured, registered, or seen in
// a published change.
func (c *Coordinator) Breakers(ctx context.Context) ([]Breaker, error) {
	names, err := c.names(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := c.store.Details(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]Breaker, len(ds))
	for i, d := range ds {
		out[i] = c.view(d)
	}
	return out, nil
}

// Breaker returns one breaker, or ErrNotFound.
func (c *Coordinator) Breaker(ctx context.Context, name string) (Breaker, error) {
	if !statestore.ValidName(name) {
		return Breaker{}, statestore.ErrInvalidName
	}
	ds, err := c.store.Details(ctx, []string{name})
	if err != nil {
		return Breaker{}, err
	}
	if !ds[0].Exists {
		names, err := c.names(ctx)
		if err != nil {
			return Breaker{}, err
		}
		if _, found := slices.BinarySearch(names, name); !found {
			return Breaker{}, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
	}
	return c.view(ds[0]), nil
}

func (c *Coordinator) view(d statestore.Detail) Breaker {
	_, canary := c.cfg.Canaries[d.Name]
	return Breaker{Detail: d, Policy: c.policies.Policy(d.Name), HasCanary: canary}
}

// Force sets an operator override on a breaker (creating it if no agent
// has reported it yet). ttl 0 keeps it until released.
func (c *Coordinator) Force(ctx context.Context, name string, o statestore.Override, ttl time.Duration, actor, reason string) (statestore.Result, error) {
	return c.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return c.store.Force(ctx, name, p, actor, o, ttl, reason)
	})
}

// Release ends an override.
func (c *Coordinator) Release(ctx context.Context, name, actor, reason string) (statestore.Result, error) {
	return c.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return c.store.Release(ctx, name, p, actor, reason)
	})
}

// Reset closes a breaker with fresh counters and no override.
func (c *Coordinator) Reset(ctx context.Context, name, actor, reason string) (statestore.Result, error) {
	return c.admin(ctx, name, func(p statestore.Policy) (statestore.Result, error) {
		return c.store.Reset(ctx, name, p, actor, reason)
	})
}

func (c *Coordinator) admin(ctx context.Context, name string, do func(statestore.Policy) (statestore.Result, error)) (statestore.Result, error) {
	if !statestore.ValidName(name) {
		return statestore.Result{}, statestore.ErrInvalidName
	}
	if err := c.store.Register(ctx, name); err != nil {
		return statestore.Result{}, err
	}
	c.mu.Lock()
	c.known[name] = true
	c.mu.Unlock()
	res, err := do(c.policies.Policy(name))
	if err != nil {
		return res, err
	}
	c.logTransition(res)
	return res, nil
}

// Events returns a breaker's journal, newest first, before the event id
// before (empty: from the newest).
func (c *Coordinator) Events(ctx context.Context, name string, count int64, before string) ([]statestore.Event, error) {
	return c.store.Events(ctx, name, count, before)
}

// EventsSince returns every breaker's events after the cursor, oldest
// first (see statestore.Store.EventsSince).
func (c *Coordinator) EventsSince(ctx context.Context, after statestore.EventCursor, count int64) ([]statestore.Event, error) {
	names, err := c.names(ctx)
	if err != nil {
		return nil, err
	}
	return c.store.EventsSince(ctx, names, after, count)
}

// Agents lists the agents heard from in the last 30 seconds.
func (c *Coordinator) Agents(ctx context.Context) ([]statestore.AgentInfo, error) {
	now := time.Now()
	return c.store.Agents(ctx, now.Add(-30*time.Second), now.Add(-time.Hour))
}
