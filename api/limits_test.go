package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

func reportOfN(agent, prefix string, n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`{"name":"%s-%04d","ok":1}`, prefix, i))
	}
	return fmt.Sprintf(`{"agent":%q,"breakers":[%s]}`, agent, strings.Join(parts, ","))
}

// Through the API: an agent token that names new
// breakers past a limit gets a 429 problem naming the limit, and the
// registry, the list and /metrics stay bounded.
func TestServer_RegistrationLimitsAndBoundedReads(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Coordinator: func(cfg *coordinator.Config) {
		cfg.Limits = statestore.Limits{MaxBreakers: 250, MaxPerAgent: 120}
		cfg.MetricsMaxBreakers = 50
	}})
	h := c.Coordinators[0].API
	if rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, reportOfN("a1", "a1", 120)); rec.Code != 200 {
		t.Fatalf("120 names: %d %s", rec.Code, rec.Body)
	}
	rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, reportOfN("a1", "more", 1))
	var p api.Problem
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(rec.Body.Bytes(), &p) != nil || !strings.Contains(p.Detail, "max_breakers_per_agent (120)") {
		t.Fatalf("past the per-agent limit: %d %s", rec.Code, rec.Body)
	}
	// Agents with ids of their own fill the registry up to max_breakers.
	for i := range 3 {
		agent := fmt.Sprintf("b%d", i)
		rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, reportOfN(agent, agent, 60))
		want := 200
		if i == 2 {
			want = http.StatusTooManyRequests // 120+60+60 = 240; 60 more is 300 > 250
		}
		if rec.Code != want {
			t.Fatalf("agent %s: %d, want %d: %s", agent, rec.Code, want, rec.Body)
		}
		if i == 2 && !strings.Contains(rec.Body.String(), "max_breakers (250)") {
			t.Fatalf("the problem does not name max_breakers: %s", rec.Body)
		}
	}
	names, err := c.Store.Names(context.Background())
	if err != nil || len(names) != 240 {
		t.Fatalf("registry holds %d names (%v), want 240", len(names), err)
	}
	// The list comes a page at a time.
	list := decode[struct {
		Breakers   []api.BreakerView `json:"breakers"`
		NextCursor string            `json:"next_cursor"`
	}](t, call(t, h, "GET", "/v1/breakers", testcluster.ReadToken, ""))
	if len(list.Breakers) != coordinator.DefaultPageSize || list.NextCursor != list.Breakers[len(list.Breakers)-1].Name {
		t.Fatalf("first page: %d breakers, next %q", len(list.Breakers), list.NextCursor)
	}
	// /metrics: one state series per breaker, at most the cap, the open
	// ones first, and a gauge for the rest.
	c.Trip(t, "a1-0119", 5)
	var body string
	testcluster.Eventually(t, 3*time.Second, "the registrations and the trip in the coordinator's view", func() bool {
		body = call(t, h, "GET", "/metrics", "", "").Body.String()
		return strings.Contains(body, `fusebox_breaker_state{breaker="a1-0119",state="open"} 1`) && strings.Contains(body, "fusebox_breaker_state_omitted 190")
	})
	if n := strings.Count(body, "fusebox_breaker_state{"); n != 50 {
		t.Fatalf("%d fusebox_breaker_state series, want the cap (50)", n)
	}
	if !strings.Contains(body, `fusebox_breaker_state{breaker="a1-0119",state="open"} 1`) || !strings.Contains(body, "fusebox_breaker_state_omitted 190") {
		t.Fatalf("the open breaker or the omitted count is missing:\n%s", grep(body, "fusebox_breaker_state"))
	}
	if !strings.Contains(body, "fusebox_reports_refused_total 2") {
		t.Fatalf("refused reports not counted:\n%s", grep(body, "refused"))
	}
}

func grep(body, what string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, what) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], "…")
	}
	return strings.Join(out, "\n")
}

func TestServer_DeleteBreaker(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	h := c.Coordinators[0].API
	c.Trip(t, "doomed", 5)
	live, stop := c.Coordinators[0].Subscribe()
	defer stop()
	if rec := call(t, h, "DELETE", "/v1/breakers/doomed", testcluster.ReadToken, `{"reason":"x"}`); rec.Code != http.StatusForbidden {
		t.Fatalf("delete as read: %d", rec.Code)
	}
	if rec := call(t, h, "DELETE", "/v1/breakers/doomed", testcluster.AdminToken, `{"reason":"decommissioned"}`); rec.Code != 200 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, "GET", "/v1/breakers/doomed", testcluster.ReadToken, ""); rec.Code != 404 {
		t.Fatalf("after delete: %d %s", rec.Code, rec.Body)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-live:
			if e.Breaker == "doomed" && e.Event == "deleted" {
				if e.Actor != "test-admin" || e.Reason != "decommissioned" || e.OldState != "open" {
					t.Fatalf("deleted event: %+v", e)
				}
				return
			}
		case <-deadline:
			t.Fatal("no deleted event on the stream within 5s")
		}
	}
}

// A client's own cancellation is not a 503 logged as a server error:
// it is nginx's 499, and not an error of ours.
func TestServer_ClientCancellationIs499AndNotAnError(t *testing.T) {
	b := redistest.Real(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	coord, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := zerolog.New(&logs)
	srv := api.New(api.Config{Tokens: testcluster.Tokens, Logger: &log}, coord)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up
	req := httptest.NewRequest("POST", "/v1/reports", strings.NewReader(`{"agent":"a1","breakers":[{"name":"openai","fail":1}]}`)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != api.StatusClientClosedRequest {
		t.Fatalf("status %d, want 499: %s", rec.Code, rec.Body)
	}
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Fatalf("the client's hang-up was logged as an error: %s", logs.String())
	}
}
