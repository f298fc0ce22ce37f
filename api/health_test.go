package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// stuckDomain's readiness check never returns until the test ends, and
// ignores its context, as a client stuck on a half-dead Redis may.
type stuckDomain struct {
	api.Domain // nil: /readyz calls only Ready
	release    chan struct{}
}

func (d stuckDomain) Ready(context.Context) error {
	<-d.release
	return nil
}

func readyz(t *testing.T, h http.Handler) (*httptest.ResponseRecorder, time.Duration) {
	t.Helper()
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec, time.Since(start)
}

// wantRedisProblem fails unless rec is a 503 problem naming redis.
func wantRedisProblem(t *testing.T, rec *httptest.ResponseRecorder, took time.Duration) api.Problem {
	t.Helper()
	if took > time.Second {
		t.Fatalf("/readyz took %s", took)
	}
	var p api.Problem
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("/readyz: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 503 || !strings.HasPrefix(p.Detail, "redis unreachable") {
		t.Fatalf("problem %s (%v): want it to name redis", rec.Body, err)
	}
	return p
}

func TestServer_Readyz(t *testing.T) {
	t.Run("answers 200 while Redis answers", func(t *testing.T) {
		f := newFixture(t, redistest.Real(t))
		if rec, _ := readyz(t, f.srv); rec.Code != http.StatusOK {
			t.Fatalf("/readyz: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("answers 503 naming redis within a second once redis-server is gone", func(t *testing.T) {
		srv := redistest.Start(t)
		f := newFixture(t, redistest.Backend{Name: "real", Addr: srv.Addr, Client: srv.Client(t)})
		if rec, _ := readyz(t, f.srv); rec.Code != http.StatusOK {
			t.Fatalf("/readyz before the stop: %d", rec.Code)
		}
		srv.Stop(t)
		for range 3 {
			rec, took := readyz(t, f.srv)
			p := wantRedisProblem(t, rec, took)
			t.Logf("%s in %s", p.Detail, took.Round(time.Millisecond))
		}
	})
	t.Run("answers within its bound when the check does not return", func(t *testing.T) {
		d := stuckDomain{release: make(chan struct{})}
		t.Cleanup(func() { close(d.release) })
		srv := api.New(api.Config{Tokens: testcluster.Tokens}, d)
		rec, took := readyz(t, srv)
		if p := wantRedisProblem(t, rec, took); !strings.Contains(p.Detail, "no answer within 500ms") {
			t.Fatalf("detail %q", p.Detail)
		}
	})
}
