package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/statestore"
)

// streamEvents serves every journaled event as Server-Sent Events:
//
//	id: <ms>-<seq>/<breaker>
//	event: <event name, e.g. trip>
//	data: <EventView JSON>
//
// A client that reconnects with Last-Event-ID (header, or the
// last_event_id query parameter) first gets every event it missed, then
// the live ones; events of its last event's millisecond may come twice
// (their id tells). ?replay=N on a fresh connection first sends the newest
// N events (at most 500).
func (s *Server) streamEvents(c echo.Context) error {
	ctx := c.Request().Context()
	lastID := c.Request().Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = c.QueryParam("last_event_id")
	}
	var after statestore.EventCursor
	if lastID != "" {
		var err error
		if after, err = statestore.ParseCursor(lastID); err != nil {
			return badRequest("Last-Event-ID: %v", err)
		}
	}
	replay := int64(0)
	if v := c.QueryParam("replay"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 500 {
			return badRequest("replay: want 0-500, got %q", clipped(v))
		}
		replay = n
	}

	// Subscribe before reading the journal, so nothing falls between.
	live, stop := s.d.Subscribe()
	defer stop()
	var backlog []statestore.Event
	switch {
	case lastID != "":
		evs, err := s.d.EventsSince(ctx, after, 1000)
		if err != nil {
			return err
		}
		backlog = evs
	case replay > 0:
		evs, err := s.d.EventsSince(ctx, statestore.EventCursor{}, replay)
		if err != nil {
			return err
		}
		backlog = evs
	}

	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sent := map[statestore.EventCursor]bool{}
	send := func(e statestore.Event) error {
		cur := statestore.CursorOf(e)
		if sent[cur] {
			return nil
		}
		sent[cur] = true
		data, err := json.Marshal(viewEvent(e))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", cur, e.Event, data); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	w.Flush()
	for _, e := range backlog {
		if err := send(e); err != nil {
			return nil
		}
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case e, ok := <-live:
			if !ok {
				return nil // fell behind: the client reconnects and resumes
			}
			if err := send(e); err != nil {
				return nil
			}
			if len(sent) > 10_000 {
				clear(sent) // only the backlog's overlap needs remembering
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
