package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/statestore"
)

// timelineSpan is how far back GET /v1/timelines reads the journals: the
// dashboard's strips show the last hour.
const timelineSpan = time.Hour

// RatesView is one breaker's calls and failures per second, as agents
// reported them, oldest first; the last bucket (end) is still filling.
type RatesView struct {
	Name     string    `json:"name"`
	End      time.Time `json:"end"`
	Calls    []int64   `json:"calls"`
	Failures []int64   `json:"failures"`
}

// TimelineView is one breaker's journal over the span, oldest first;
// truncated when the span held more events than the limit (the newest
// are kept).
type TimelineView struct {
	Name      string      `json:"name"`
	Events    []EventView `json:"events"`
	Truncated bool        `json:"truncated"`
}

// RouteView is one route's answers per second over the last minute,
// oldest first, and its totals: fallback_share is fallback_total /
// served_total (0 with none served).
type RouteView struct {
	Name          string    `json:"name"`
	End           time.Time `json:"end"`
	Served        []int64   `json:"served"`
	Fallback      []int64   `json:"fallback"`
	ServedTotal   int64     `json:"served_total"`
	FallbackTotal int64     `json:"fallback_total"`
	FallbackShare float64   `json:"fallback_share"`
}

func viewRates(r statestore.Rates) RatesView {
	return RatesView{Name: r.Name, End: r.End.UTC(), Calls: r.Calls, Failures: r.Failures}
}

// breakerRates serves one breaker's rates.
func (s *Server) breakerRates(c echo.Context) error {
	name, err := breakerName(c)
	if err != nil {
		return err
	}
	if _, err := s.d.Breaker(c.Request().Context(), name); err != nil {
		return err
	}
	rs, err := s.d.Rates(c.Request().Context(), []string{name})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewRates(rs[0]))
}

// listRates serves the rates of the breakers in ?names= (1-100,
// comma-separated); a breaker nobody reported has zeros.
func (s *Server) listRates(c echo.Context) error {
	names, err := namesParam(c)
	if err != nil {
		return err
	}
	rs, err := s.d.Rates(c.Request().Context(), names)
	if err != nil {
		return err
	}
	out := make([]RatesView, len(rs))
	for i, r := range rs {
		out[i] = viewRates(r)
	}
	return c.JSON(http.StatusOK, map[string]any{"seconds": statestore.RateSeconds, "rates": out})
}

// listTimelines serves the journals of the breakers in ?names= over the
// last hour, at most ?limit= (1-500, default 100) events each.
func (s *Server) listTimelines(c echo.Context) error {
	names, err := namesParam(c)
	if err != nil {
		return err
	}
	limit := int64(100)
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 500 {
			return badRequest("limit: want 1-500, got %q", clipped(v))
		}
		limit = n
	}
	tls, since, err := s.d.Timelines(c.Request().Context(), names, timelineSpan, limit)
	if err != nil {
		return err
	}
	out := make([]TimelineView, len(tls))
	for i, tl := range tls {
		evs := make([]EventView, len(tl.Events))
		for j, e := range tl.Events {
			evs[j] = viewEvent(e)
		}
		out[i] = TimelineView{Name: tl.Name, Events: evs, Truncated: tl.Truncated}
	}
	return c.JSON(http.StatusOK, map[string]any{"since": since.UTC(), "timelines": out})
}

// listRoutes serves what the agents' routes served per second over the
// last minute.
func (s *Server) listRoutes(c echo.Context) error {
	rs, err := s.d.Routes(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]RouteView, len(rs))
	for i, r := range rs {
		v := RouteView{Name: r.Route, End: r.End.UTC(), Served: r.Served, Fallback: r.Fallback}
		for j := range r.Served {
			v.ServedTotal += r.Served[j]
			v.FallbackTotal += r.Fallback[j]
		}
		if v.ServedTotal > 0 {
			v.FallbackShare = float64(v.FallbackTotal) / float64(v.ServedTotal)
		}
		out[i] = v
	}
	return c.JSON(http.StatusOK, map[string]any{"seconds": statestore.RateSeconds, "routes": out})
}

// namesParam reads ?names=a,b,c: 1-100 breaker names.
func namesParam(c echo.Context) ([]string, error) {
	v := c.QueryParam("names")
	if v == "" {
		return nil, badRequest("names: required, 1-%d comma-separated breaker names", coordinator.MaxBatch)
	}
	names := strings.Split(v, ",")
	if len(names) > coordinator.MaxBatch {
		return nil, badRequest("names: at most %d, got %d", coordinator.MaxBatch, len(names))
	}
	for _, n := range names {
		if !statestore.ValidName(n) {
			return nil, badRequest("names: invalid breaker name %q: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit", clipped(n))
		}
	}
	return names, nil
}
