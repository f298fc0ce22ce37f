package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/statestore"
)

// Limits on override requests.
const (
	maxReason = 256
	minTTL    = time.Second
	maxTTL    = 7 * 24 * time.Hour
)

// OverrideRequest is the body of force-open, force-closed, release and
// reset.
type OverrideRequest struct {
	// Reason is recorded in the journal; required to force.
	Reason string `json:"reason"`
	// TTL ends a forced override by itself, cluster-wide ("15m").
	TTL string `json:"ttl,omitempty"`
}

// listBreakers serves one page of the breakers, sorted by name:
// ?limit= (1-1000, default 100) after ?cursor= (the previous page's
// next_cursor). next_cursor is empty on the last page. ?group= lists one
// group's (groups.go).
func (s *Server) listBreakers(c echo.Context) error {
	limit := coordinator.DefaultPageSize
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > coordinator.MaxPageSize {
			return badRequest("limit: want 1-%d, got %q", coordinator.MaxPageSize, clipped(v))
		}
		limit = n
	}
	cursor := c.QueryParam("cursor")
	if cursor != "" && !statestore.ValidName(cursor) {
		return badRequest("cursor: want the next_cursor of the previous page, got %q", clipped(cursor))
	}
	if group := c.QueryParam("group"); group != "" {
		return s.listGroup(c, group, cursor, limit)
	}
	page, err := s.d.Breakers(c.Request().Context(), cursor, limit)
	if err != nil {
		return err
	}
	out := make([]BreakerView, len(page.Breakers))
	for i, b := range page.Breakers {
		out[i] = viewBreaker(b)
	}
	return c.JSON(http.StatusOK, map[string]any{"breakers": out, "next_cursor": page.Next})
}

// deleteBreaker forgets a breaker: its state and journal go, its name
// leaves the registry, and the last event (deleted, with the token's
// name and the reason) is published and logged. The reason is required.
func (s *Server) deleteBreaker(c echo.Context) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	req, err := overrideRequest(c, true)
	if err != nil {
		return err
	}
	if req.TTL != "" {
		return badRequest("ttl: only force-open and force-closed take a ttl")
	}
	if _, err := s.d.Delete(c.Request().Context(), name, actor(c), req.Reason); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"deleted": name})
}

func (s *Server) getBreaker(c echo.Context) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	b, err := s.d.Breaker(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewBreaker(b))
}

func (s *Server) forceOpen(c echo.Context) error   { return s.force(c, statestore.OverrideOpen) }
func (s *Server) forceClosed(c echo.Context) error { return s.force(c, statestore.OverrideClosed) }

func (s *Server) force(c echo.Context, o statestore.Override) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	req, err := overrideRequest(c, true)
	if err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl < minTTL || ttl > maxTTL {
			return badRequest("ttl: want a duration between %s and %s, like \"15m\", got %q", minTTL, maxTTL, clipped(req.TTL))
		}
	}
	if _, err := s.d.Force(c.Request().Context(), name, o, ttl, actor(c), req.Reason); err != nil {
		return err
	}
	return s.respondBreaker(c, name)
}

func (s *Server) release(c echo.Context) error {
	return s.endOverride(c, "released", s.d.Release)
}

func (s *Server) reset(c echo.Context) error {
	return s.endOverride(c, "reset", s.d.Reset)
}

func (s *Server) endOverride(c echo.Context, defaultReason string, do func(ctx context.Context, name, actor, reason string) (statestore.Result, error)) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	req, err := overrideRequest(c, false)
	if err != nil {
		return err
	}
	if req.TTL != "" {
		return badRequest("ttl: only force-open and force-closed take a ttl")
	}
	if req.Reason == "" {
		req.Reason = defaultReason
	}
	if _, err := do(c.Request().Context(), name, actor(c), req.Reason); err != nil {
		return err
	}
	return s.respondBreaker(c, name)
}

func (s *Server) respondBreaker(c echo.Context, name string) error {
	b, err := s.d.Breaker(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewBreaker(b))
}

var streamID = regexp.MustCompile(`^[0-9]{1,19}-[0-9]{1,19}$`)

func (s *Server) breakerEvents(c echo.Context) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	limit := int64(50)
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 500 {
			return badRequest("limit: want 1-500, got %q", clipped(v))
		}
		limit = n
	}
	before := c.QueryParam("before")
	if before != "" && !streamID.MatchString(before) {
		return badRequest("before: want an event id like 1700000000000-0, got %q", clipped(before))
	}
	if _, err := s.d.Breaker(c.Request().Context(), name); err != nil {
		return err
	}
	evs, err := s.d.Events(c.Request().Context(), name, limit, before)
	if err != nil {
		return err
	}
	out := make([]EventView, len(evs))
	for i, e := range evs {
		out[i] = viewEvent(e)
	}
	next := ""
	if int64(len(evs)) == limit {
		next = evs[len(evs)-1].ID
	}
	return c.JSON(http.StatusOK, map[string]any{"events": out, "next_before": next})
}

func (s *Server) listAgents(c echo.Context) error {
	ags, err := s.d.Agents(c.Request().Context())
	if err != nil {
		return err
	}
	type agentView struct {
		ID       string    `json:"id"`
		Service  string    `json:"service"`
		LastSeen time.Time `json:"last_seen"`
		Degraded bool      `json:"degraded"`
	}
	out := make([]agentView, len(ags))
	for i, a := range ags {
		out[i] = agentView{ID: a.ID, Service: a.Service, LastSeen: a.LastSeen.UTC(), Degraded: a.Degraded}
	}
	// By service, then id: the dashboard groups them so.
	slices.SortFunc(out, func(a, b agentView) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.ID, b.ID))
	})
	return c.JSON(http.StatusOK, map[string]any{"agents": out})
}

func breakerName(c echo.Context) (string, error) {
	name := c.Param("name")
	if !statestore.ValidName(name) {
		return "", badRequest("invalid breaker name %q: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", clipped(name))
	}
	return name, nil
}

// overrideRequest reads an override body strictly. An empty body is
// allowed where the reason is optional.
func overrideRequest(c echo.Context, reasonRequired bool) (OverrideRequest, error) {
	var req OverrideRequest
	r := c.Request()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return req, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationJSON {
			return req, echo.NewHTTPError(http.StatusUnsupportedMediaType, "want Content-Type: application/json")
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, badRequest("malformed JSON: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return req, badRequest("trailing data after the JSON object")
		}
	}
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case reasonRequired && req.Reason == "":
		return req, badRequest("reason: required, it goes into the breaker's journal")
	case len(req.Reason) > maxReason:
		return req, badRequest("reason: at most %d bytes", maxReason)
	case strings.IndexFunc(req.Reason, func(r rune) bool { return unicode.IsControl(r) }) >= 0:
		return req, badRequest("reason: no control characters")
	}
	return req, nil
}

func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

func clipped(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
