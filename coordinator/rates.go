package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/fusebox-io/fusebox/statestore"
)

// MaxBatch bounds the breakers one Rates or Timelines call reads.
const MaxBatch = 100

// Rates returns the named breakers' calls and failures per second, as
// agents reported them, over the last statestore.RateSeconds. A breaker
// nobody reported reads as zeros.
func (s *Service) Rates(ctx context.Context, names []string) ([]statestore.Rates, error) {
	if err := checkBatch(names); err != nil {
		return nil, err
	}
	return s.store.Rates(ctx, names)
}

// Timelines returns the named breakers' journals over the last span, at
// most limit events each (the newest), oldest first, and the time the
// span began.
func (s *Service) Timelines(ctx context.Context, names []string, span time.Duration, limit int64) ([]statestore.Timeline, time.Time, error) {
	if err := checkBatch(names); err != nil {
		return nil, time.Time{}, err
	}
	since := time.Now().Add(-span)
	tls, err := s.store.Timelines(ctx, names, since, limit)
	return tls, since, err
}

func checkBatch(names []string) error {
	if len(names) == 0 || len(names) > MaxBatch {
		return fmt.Errorf("%w: name 1-%d breakers, got %d", statestore.ErrInvalid, MaxBatch, len(names))
	}
	for _, n := range names {
		if !statestore.ValidName(n) {
			return statestore.ErrInvalidName
		}
	}
	return nil
}
