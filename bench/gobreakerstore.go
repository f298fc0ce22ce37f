package bench

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// GobreakerStore is gobreaker v2's SharedDataStore over Redis, as its
// design expects: GET/SET of the shared state and a redsync mutex per
// name. gobreaker's DistributedCircuitBreaker calls Lock, GetData, the
// request, SetData and Unlock on every Execute.
type GobreakerStore struct {
	rdb redis.UniversalClient
	rs  *redsync.Redsync

	mu    sync.Mutex
	locks map[string]*redsync.Mutex // guarded by mu
}

// NewGobreakerStore returns the adapter.
func NewGobreakerStore(rdb redis.UniversalClient) *GobreakerStore {
	return &GobreakerStore{rdb: rdb, rs: redsync.New(goredis.NewPool(rdb)), locks: map[string]*redsync.Mutex{}}
}

// Lock takes the named mutex once (gobreaker retries until its own
// timeout).
func (s *GobreakerStore) Lock(name string) error {
	m := s.rs.NewMutex(name, redsync.WithExpiry(5*time.Second), redsync.WithTries(1))
	if err := m.Lock(); err != nil {
		return err
	}
	s.mu.Lock()
	s.locks[name] = m
	s.mu.Unlock()
	return nil
}

// Unlock releases the named mutex.
func (s *GobreakerStore) Unlock(name string) error {
	s.mu.Lock()
	m := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if m == nil {
		return errors.New("bench: unlock of a mutex not held")
	}
	_, err := m.Unlock()
	return err
}

// GetData reads the shared state.
func (s *GobreakerStore) GetData(name string) ([]byte, error) {
	b, err := s.rdb.Get(context.Background(), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SetData writes the shared state.
func (s *GobreakerStore) SetData(name string, data []byte) error {
	return s.rdb.Set(context.Background(), name, data, 0).Err()
}

// RoundTrips counts the commands and pipelines a go-redis client sends:
// each is one round trip.
type RoundTrips struct {
	mu sync.Mutex
	n  int64 // guarded by mu
}

// Count is the number of round trips so far.
func (r *RoundTrips) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *RoundTrips) add() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

// DialHook passes dials through.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts one round trip per command.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add()
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts one round trip per pipeline.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.add()
		return next(ctx, cmds)
	}
}
