package statestore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event is one journaled transition with its stream id.
type Event struct {
	ID string `json:"id"`
	Transition
}

// Events returns up to count of a breaker's events, newest first, older
// than the event id before (empty: from the newest).
func (s *Store) Events(ctx context.Context, name string, count int64, before string) ([]Event, error) {
	if !ValidName(name) {
		return nil, ErrInvalidName
	}
	if count <= 0 {
		count = 50
	}
	hi := "+"
	if before != "" {
		hi = "(" + before
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.eventsKey(name), hi, "-", count).Result()
	if err != nil {
		return nil, wrapRedis(ctx, err)
	}
	return decodeEvents(msgs), nil
}

func decodeEvents(msgs []redis.XMessage) []Event {
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		f := func(k string) string { return str(m.Values[k]) }
		out = append(out, Event{ID: m.ID, Transition: Transition{
			Event:        f("event"),
			Breaker:      f("breaker"),
			OldState:     f("old_state"),
			NewState:     f("new_state"),
			Version:      atoi(f("version")),
			Reason:       f("reason"),
			FailureCount: atoi(f("failure_count")),
			LastError:    f("last_error"),
			Actor:        f("actor"),
			Time:         time.UnixMilli(atoi(f("ts"))),
			OpenForMS:    atoi(f("open_for_ms")),
		}})
	}
	return out
}
