package agentlib_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
)

// recorder is a coordinator that records reports and answers 200.
type recorder struct {
	mu      sync.Mutex
	reports []report.Report // guarded by mu
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rep, err := report.Decode(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.reports = append(r.reports, rep)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(report.Response{Breakers: nil})
}

// sum adds up every entry reported for name.
func (r *recorder) sum(name string) (total report.Breaker, entries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		for _, b := range rep.Breakers {
			if b.Name != name {
				continue
			}
			entries++
			total.OK += b.OK
			total.Fail += b.Fail
			total.Slow += b.Slow
			total.TrailingFail = b.TrailingFail
			total.RetryAfterMS = max(total.RetryAfterMS, b.RetryAfterMS)
			if b.LastError != "" {
				total.LastError = b.LastError
			}
		}
	}
	return total, entries
}

// hung adds up the calls reported hung for name.
func (r *recorder) hung(name string) (n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		for _, b := range rep.Breakers {
			if b.Name == name && b.Hung != nil {
				n += b.Hung.N
			}
		}
	}
	return n
}

// hungWaiting is the last hung report's waiting count and oldest age.
func (r *recorder) hungWaiting(name string) (waiting, oldestMS int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		for _, b := range rep.Breakers {
			if b.Name == name && b.Hung != nil {
				waiting, oldestMS = b.Hung.Waiting, b.Hung.OldestMS
			}
		}
	}
	return waiting, oldestMS
}

func newRecordedAgent(t *testing.T, flush time.Duration) (*agentlib.Agent, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	rdb := redistest.Mini(t)
	a, err := agentlib.New(agentlib.Config{
		CoordinatorURL: srv.URL,
		Redis:          rdb.Client,
		AgentID:        "rec",
		FlushInterval:  flush,
		ResyncInterval: time.Hour,
		HangResolution: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, rec
}

type retryErr struct{ d time.Duration }

func (e retryErr) Error() string             { return "HTTP 429 rate_limit_exceeded" }
func (e retryErr) RetryAfter() time.Duration { return e.d }

func TestFlusher_ReportsWhatHappened(t *testing.T) {
	a, rec := newRecordedAgent(t, time.Hour) // only failures and Close flush
	b := breaker(t, a, "openai")
	outcomes := []agentlib.Outcome{
		agentlib.Success(), agentlib.Success(), agentlib.Success(),
		agentlib.Ignored(),
	}
	for _, o := range outcomes {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(o)
	}
	if _, n := rec.sum("openai"); n != 0 {
		t.Fatal("successes were sent before the flush interval")
	}
	// A failure is sent at once.
	done, _ := b.Allow()
	done(agentlib.FailureRetryAfter(retryErr{}, 30*time.Second))
	testcluster.Eventually(t, 2*time.Second, "the failure is reported at once", func() bool {
		_, n := rec.sum("openai")
		return n > 0
	})
	got, _ := rec.sum("openai")
	if got.OK != 3 || got.Fail != 1 || got.TrailingFail != 1 || got.RetryAfterMS != 30000 || got.LastError != "HTTP 429 rate_limit_exceeded" {
		t.Fatalf("reported %+v", got)
	}
}

func TestAgent_CloseFlushesPendingOutcomes(t *testing.T) {
	a, rec := newRecordedAgent(t, time.Hour)
	b := breaker(t, a, "openai")
	// Successes only: nothing urgent; Close must flush them.
	for range 7 {
		done, _ := b.Allow()
		done(agentlib.Success())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, n := rec.sum("openai")
	if n == 0 || got.OK != 7 || got.Fail != 0 {
		t.Fatalf("Close flushed %+v in %d entries, want 7 successes", got, n)
	}
}

func TestFlusher_LongErrorsAreClipped(t *testing.T) {
	a, rec := newRecordedAgent(t, time.Hour)
	b := breaker(t, a, "openai")
	done, _ := b.Allow()
	done(agentlib.Failure(errors.New(strings.Repeat("é", 600))))
	testcluster.Eventually(t, 2*time.Second, "reported", func() bool { _, n := rec.sum("openai"); return n > 0 })
	got, _ := rec.sum("openai")
	if len(got.LastError) > report.MaxLastError || len(got.LastError) < report.MaxLastError-2 || !strings.HasPrefix(got.LastError, "éé") {
		t.Fatalf("last_error of %d bytes", len(got.LastError))
	}
}

func TestAgent_Breaker_RejectsBadNames(t *testing.T) {
	a, _ := newRecordedAgent(t, time.Hour)
	for _, n := range []string{"", "a b", "x}{y", strings.Repeat("a", 200)} {
		if _, err := a.Breaker(n); !errors.Is(err, agentlib.ErrInvalidName) {
			t.Errorf("name %q: %v", n, err)
		}
	}
	b1, _ := a.Breaker("same")
	b2, _ := a.Breaker("same")
	if b1 != b2 {
		t.Fatal("two handles for one name")
	}
}

// TestAgent_ARegistrationLimitIsNotAnOutage: a coordinator that refuses a
// report for its registration limit (429) is not down: the agent drops
// that report and stays on the cluster.
func TestAgent_ARegistrationLimitIsNotAnOutage(t *testing.T) {
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"title":"Too Many Requests","status":429,"detail":"max_breakers_per_agent: 1000"}`))
	}))
	t.Cleanup(srv.Close)
	rdb := redistest.Mini(t)
	a, err := agentlib.New(agentlib.Config{CoordinatorURL: srv.URL, Redis: rdb.Client, AgentID: "limited", ResyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b := breaker(t, a, "one-too-many")
	for range 3 {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Failure(errProvider))
	}
	testcluster.Eventually(t, 3*time.Second, "reports refused", func() bool { return refused.Load() >= 2 })
	if _, coordOK := a.Links(); !coordOK || a.Degraded() {
		t.Fatalf("a registration limit made the agent degraded (coordinator link %v)", coordOK)
	}
}
