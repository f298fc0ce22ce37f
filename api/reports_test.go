package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

type fixture struct {
	srv   *api.Server
	store *statestore.Store
}

func newFixture(t *testing.T, b redistest.Backend) fixture {
	t.Helper()
	store, err := statestore.New(b.Client, statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	coord, err := coordinator.New(coordinator.Config{ID: "c1"}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv: api.New(api.Config{BodyLimit: 64 << 10, Tokens: testcluster.Tokens}, coord), store: store}
}

func (f fixture) post(t *testing.T, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/reports", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

func TestServer_PostReport(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		f := newFixture(t, b)

		t.Run("a valid report is applied and answered with the breakers' states", func(t *testing.T) {
			rec := f.post(t, "application/json", `{"agent":"a1","breakers":[{"name":"openai","fail":5,"trailing_fail":5,"last_error":"503"},{"name":"ollama","ok":3}]}`)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var resp report.Response
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Breakers) != 2 || resp.Breakers[0].State != statestore.StateOpen || resp.Breakers[1].State != statestore.StateClosed {
				t.Fatalf("response = %+v", resp)
			}
		})

		t.Run("a heartbeat with no breakers is fine", func(t *testing.T) {
			if rec := f.post(t, "application/json; charset=utf-8", `{"agent":"a1","breakers":[]}`); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		})

		t.Run("bad bodies get a problem and leave the state untouched", func(t *testing.T) {
			// Put a breaker at 4 consecutive failures: one more would trip it.
			if rec := f.post(t, "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":4,"trailing_fail":4}]}`); rec.Code != http.StatusOK {
				t.Fatal(rec.Body)
			}
			before := snapshot(t, f.store, "victim")
			cases := []struct {
				name, ctype, body string
				status            int
			}{
				{"empty body", "application/json", "", 400},
				{"not JSON", "application/json", "fail fail fail", 400},
				{"truncated", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1`, 400},
				{"unknown field", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"trip":true}]}`, 400},
				{"bad breaker name", "application/json", `{"agent":"a1","breakers":[{"name":"vic tim","fail":1}]}`, 400},
				{"hash tag in name", "application/json", `{"agent":"a1","breakers":[{"name":"x}{victim","fail":1}]}`, 400},
				{"negative count", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":-1}]}`, 400},
				{"huge count", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":99999999999}]}`, 400},
				{"float count", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1.5}]}`, 400},
				{"string count", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":"1"}]}`, 400},
				{"trailing over fail", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"trailing_fail":2}]}`, 400},
				{"duplicate breaker", "application/json", `{"agent":"a1","breakers":[{"name":"ollama","ok":1},{"name":"ollama","ok":1}]}`, 400},
				{"missing agent", "application/json", `{"breakers":[{"name":"victim","fail":1}]}`, 400},
				{"bad agent", "application/json", `{"agent":"<script>","breakers":[]}`, 400},
				{"two documents", "application/json", `{"agent":"a1","breakers":[]}{"agent":"a1","breakers":[{"name":"victim","fail":1}]}`, 400},
				{"array", "application/json", `[{"agent":"a1"}]`, 400},
				{"null", "application/json", `null`, 400},
				{"negative retry-after", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"retry_after_ms":-5}]}`, 400},
				{"probe with no epoch", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"probe":{"ok":true}}]}`, 400},
				{"long last_error", "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"last_error":"` + strings.Repeat("x", 600) + `"}]}`, 400},
				{"over the body limit", "application/json", `{"agent":"a1","breakers":[],"x":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
				{"wrong content type", "text/plain", `{"agent":"a1","breakers":[{"name":"victim","fail":1}]}`, 415},
				{"no content type", "", `{"agent":"a1","breakers":[{"name":"victim","fail":1}]}`, 415},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					rec := f.post(t, tc.ctype, tc.body)
					if rec.Code != tc.status {
						t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
					}
					if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
						t.Fatalf("Content-Type %q, want application/problem+json", ct)
					}
					var p api.Problem
					if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tc.status || p.Detail == "" {
						t.Fatalf("problem = %+v (%v)", p, err)
					}
				})
			}
			if after := snapshot(t, f.store, "victim"); after != before {
				t.Fatalf("state moved: %+v -> %+v", before, after)
			}
			// And the breaker still counts from where it was: one more failure trips it.
			if rec := f.post(t, "application/json", `{"agent":"a1","breakers":[{"name":"victim","fail":1,"trailing_fail":1}]}`); rec.Code != 200 {
				t.Fatal(rec.Body)
			}
			if s := snapshot(t, f.store, "victim"); s.State != statestore.StateOpen {
				t.Fatalf("after the 5th failure: %s", s.State)
			}
		})
	})
}

func TestServer_RedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	f := newFixture(t, redistest.Backend{Name: "real", Addr: srv.Addr, Client: c})
	srv.Stop(t)
	rec := f.post(t, "application/json", `{"agent":"a1","breakers":[{"name":"openai","fail":1}]}`)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("report with redis down: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	rr := httptest.NewRecorder()
	f.srv.ServeHTTP(rr, req)
	if rr.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with redis down: %d", rr.Code)
	}
	hr := httptest.NewRecorder()
	f.srv.ServeHTTP(hr, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if hr.Code != http.StatusOK {
		t.Fatalf("healthz: %d", hr.Code)
	}
}

func TestServer_UnknownRoute(t *testing.T) {
	f := newFixture(t, redistest.Mini(t))
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/nope", nil))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown route: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/reports", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/reports: %d", rec.Code)
	}
}

func snapshot(t *testing.T, s *statestore.Store, name string) statestore.Snapshot {
	t.Helper()
	sn, err := s.Snapshots(context.Background(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	return sn[0]
}
