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
		out = append(out, eventFrom(m.ID, func(k string) string { return str(m.Values[k]) }))
	}
	return out
}

// EventOf reads a journaled event from its fields as a change message
// carries them (report.Change.Event), its stream id under "id".
func EventOf(fields map[string]string) Event {
	return eventFrom(fields["id"], func(k string) string { return fields[k] })
}

// eventFrom reads an event from its journal fields (a stream entry's, or
// the copy published with a change).
func eventFrom(id string, f func(string) string) Event {
	return Event{ID: id, Transition: Transition{
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
	}}
}

// EventsSince returns the events of the named breakers journaled after
// the cursor (empty: the newest count of them), oldest first, at most
// count of them. Events of different breakers are ordered by their stream
// ids' time, sequence and breaker name; within one millisecond that order
// may differ from the order they happened in, so every event of the
// cursor's millisecond but the cursor's own is returned again: a client
// resuming from a Last-Event-ID may see an event twice, never miss one.
func (s *Store) EventsSince(ctx context.Context, names []string, after EventCursor, count int64) ([]Event, error) {
	if count <= 0 {
		count = 500
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(names))
	for i, n := range names {
		if !ValidName(n) {
			return nil, ErrInvalidName
		}
		if after.ID == "" {
			cmds[i] = pipe.XRevRangeN(ctx, s.eventsKey(n), "+", "-", count)
		} else {
			ms, _ := splitID(after.ID)
			cmds[i] = pipe.XRangeN(ctx, s.eventsKey(n), strconv.FormatInt(ms, 10), "+", count+1)
		}
	}
	if len(names) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, wrapRedis(ctx, err)
		}
	}
	var all []Event
	for _, c := range cmds {
		for _, e := range decodeEvents(c.Val()) {
			if after.ID == "" || after.Before(CursorOf(e)) {
				all = append(all, e)
			}
		}
	}
	slices.SortFunc(all, func(a, b Event) int { return CursorOf(a).Compare(CursorOf(b)) })
	if int64(len(all)) > count {
		if after.ID == "" {
			all = all[int64(len(all))-count:]
		} else {
			all = all[:count]
		}
	}
	return all, nil
}

// EventCursor orders events across breakers: a stream id, then the
// breaker's name for ids that collide.
type EventCursor struct {
	ID      string // "<ms>-<seq>"
	Breaker string
}

// CursorOf is the cursor of an event.
func CursorOf(e Event) EventCursor { return EventCursor{ID: e.ID, Breaker: e.Breaker} }

// String is the cursor as an SSE event id: "<ms>-<seq>/<breaker>".
func (c EventCursor) String() string { return c.ID + "/" + c.Breaker }

// ParseCursor reads a cursor written by String.
func ParseCursor(s string) (EventCursor, error) {
	id, breaker, ok := strings.Cut(s, "/")
	ms, seq, ok2 := strings.Cut(id, "-")
	if !ok || !ok2 || !ValidName(breaker) || !digits(ms) || !digits(seq) {
		return EventCursor{}, fmt.Errorf("%w: event id %q: want <ms>-<seq>/<breaker>", ErrInvalid, s)
	}
	return EventCursor{ID: id, Breaker: breaker}, nil
}

func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Compare orders two cursors.
func (c EventCursor) Compare(o EventCursor) int {
	cm, cs := splitID(c.ID)
	om, os := splitID(o.ID)
	switch {
	case cm != om:
		return cmp.Compare(cm, om)
	case cs != os:
		return cmp.Compare(cs, os)
	}
	return strings.Compare(c.Breaker, o.Breaker)
}

// Less reports whether c sorts before o.
func (c EventCursor) Less(o EventCursor) bool { return c.Compare(o) < 0 }

// Before reports whether an event at o is to be sent to a client that has
// seen c: every later millisecond, and every other event of c's own.
func (c EventCursor) Before(o EventCursor) bool {
	cm, _ := splitID(c.ID)
	om, _ := splitID(o.ID)
	return om > cm || (om == cm && o != c)
}

func splitID(id string) (int64, int64) {
	ms, seq, _ := strings.Cut(id, "-")
	return atoi(ms), atoi(seq)
}
