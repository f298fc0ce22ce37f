package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

func sumOf(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}

func TestServer_RatesTimelinesRoutesAndAgents(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	h := c.Coordinators[0].API
	rd, ag := testcluster.ReadToken, testcluster.AgentToken
	post := func(body string) {
		t.Helper()
		if rec := call(t, h, "POST", "/v1/reports", ag, body); rec.Code != http.StatusOK {
			t.Fatalf("report: %d %s", rec.Code, rec.Body)
		}
	}
	post(`{"agent":"web-1","service":"checkout","breakers":[{"name":"openai","ok":3,"fail":2,"trailing_fail":2}],"routes":[{"name":"chat","served":4,"fallback":1}]}`)
	post(`{"agent":"web-2","service":"checkout","degraded":true,"breakers":[],"routes":[{"name":"chat","served":6,"fallback":2}]}`)
	post(`{"agent":"batch-1","breakers":[]}`)
	c.Trip(t, "openai", 5)

	t.Run("a breaker's rates count what agents reported", func(t *testing.T) {
		r := decode[api.RatesView](t, call(t, h, "GET", "/v1/breakers/openai/rates", rd, ""))
		if r.Name != "openai" || len(r.Calls) != 60 || len(r.Failures) != 60 || sumOf(r.Calls) != 10 || sumOf(r.Failures) != 7 || time.Since(r.End) > 5*time.Second {
			t.Fatalf("rates %+v", r)
		}
		many := decode[struct {
			Seconds int             `json:"seconds"`
			Rates   []api.RatesView `json:"rates"`
		}](t, call(t, h, "GET", "/v1/rates?names=openai,never-seen", rd, ""))
		if many.Seconds != 60 || len(many.Rates) != 2 || many.Rates[0].Name != "openai" || sumOf(many.Rates[0].Calls) != 10 || many.Rates[1].Name != "never-seen" || sumOf(many.Rates[1].Calls) != 0 {
			t.Fatalf("rates of two: %+v", many)
		}
	})

	t.Run("timelines hold the last hour's journal, oldest first", func(t *testing.T) {
		c.Trip(t, "gemini", 5)
		if _, err := c.Store.Reset(t.Context(), "gemini", c.Config.Policy("gemini"), "ops", "back"); err != nil {
			t.Fatal(err)
		}
		body := decode[struct {
			Since     time.Time          `json:"since"`
			Timelines []api.TimelineView `json:"timelines"`
		}](t, call(t, h, "GET", "/v1/timelines?names=gemini,openai&limit=1", rd, ""))
		if len(body.Timelines) != 2 || time.Since(body.Since) < 59*time.Minute {
			t.Fatalf("timelines %+v", body)
		}
		g, o := body.Timelines[0], body.Timelines[1]
		if g.Name != "gemini" || len(g.Events) != 1 || g.Events[0].Transition.Event != "reset" || !g.Truncated || g.Events[0].Cursor == "" {
			t.Fatalf("gemini with limit 1: %+v", g)
		}
		if o.Name != "openai" || len(o.Events) != 1 || o.Events[0].NewState != "open" || o.Truncated {
			t.Fatalf("openai: %+v", o)
		}
		all := decode[struct {
			Timelines []api.TimelineView `json:"timelines"`
		}](t, call(t, h, "GET", "/v1/timelines?names=gemini", rd, ""))
		if ev := all.Timelines[0].Events; len(ev) != 2 || ev[0].Transition.Event != "trip" || ev[1].Transition.Event != "reset" {
			t.Fatalf("gemini: %+v", all.Timelines[0])
		}
	})

	t.Run("routes sum every agent's counts, with the fallback share", func(t *testing.T) {
		type routes struct {
			Routes []api.RouteView `json:"routes"`
		}
		var got routes
		testcluster.Eventually(t, 3*time.Second, "the coordinator writes its gathered counts", func() bool {
			got = decode[routes](t, call(t, h, "GET", "/v1/routes", rd, ""))
			return len(got.Routes) == 1 && got.Routes[0].ServedTotal == 10
		})
		r := got.Routes[0]
		if r.Name != "chat" || r.FallbackTotal != 3 || r.FallbackShare != 0.3 || len(r.Served) != 60 || sumOf(r.Fallback) != 3 {
			t.Fatalf("route %+v", r)
		}
	})

	t.Run("agents carry their service, grouped", func(t *testing.T) {
		body := decode[struct {
			Agents []struct {
				ID       string `json:"id"`
				Service  string `json:"service"`
				Degraded bool   `json:"degraded"`
			} `json:"agents"`
		}](t, call(t, h, "GET", "/v1/agents", rd, ""))
		var got []string
		for _, a := range body.Agents {
			got = append(got, fmt.Sprintf("%s/%s/%v", a.Service, a.ID, a.Degraded))
		}
		if want := "/batch-1/false /testcluster/false checkout/web-1/false checkout/web-2/true"; strings.Join(got, " ") != want {
			t.Fatalf("agents %q, want %q", strings.Join(got, " "), want)
		}
	})

	t.Run("bad parameters are a 400 naming them; an unknown breaker a 404", func(t *testing.T) {
		for path, want := range map[string]int{
			"/v1/rates":            400,
			"/v1/rates?names=":     400,
			"/v1/rates?names=a,,b": 400,
			"/v1/rates?names=" + strings.Repeat("x,", 100) + "x": 400,
			"/v1/timelines?names=a%20b":                          400,
			"/v1/timelines?names=a&limit=0":                      400,
			"/v1/timelines?names=a&limit=501":                    400,
			"/v1/breakers/nobody/rates":                          404,
			"/v1/breakers/a%7Db/rates":                           400,
		} {
			rec := call(t, h, "GET", path, rd, "")
			if rec.Code != want || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body, want)
			}
		}
	})
}
