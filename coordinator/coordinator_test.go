package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCoordinator_IngestAndTimers(t *testing.T) {
	b := redistest.Real(t)
	store, err := statestore.New(b.Client, statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("breakers:\n  openai:\n    open_timeout: 200ms\n    max_open_timeout: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs)
	// Two coordinators on one Redis, as in production.
	var coords []*coordinator.Coordinator
	for _, id := range []string{"c1", "c2"} {
		c, err := coordinator.New(coordinator.Config{ID: id, TickInterval: 10 * time.Millisecond, Logger: &log}, store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		coords = append(coords, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range coords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	snaps, err := coords[0].Ingest(ctx, valid(t, report.Report{Agent: "a1", Breakers: []report.Breaker{{Name: "openai", Fail: 5, TrailingFail: 5, LastError: "HTTP 503"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if snaps[0].State != statestore.StateOpen {
		t.Fatalf("after 5 failures: %+v", snaps[0])
	}
	testcluster.Eventually(t, 5*time.Second, "half-open after a 200ms open timeout", func() bool {
		s, err := store.Snapshots(ctx, []string{"openai"})
		if err != nil {
			t.Fatal(err)
		}
		if s[0].State == statestore.StateHalfOpen && s[0].Epoch != 1 {
			t.Fatalf("epoch %d after one open window, want 1", s[0].Epoch)
		}
		return s[0].State == statestore.StateHalfOpen
	})
	// The coordinator that made it logs it right after its script returns.
	testcluster.Eventually(t, 5*time.Second, "the half-open transition logged", func() bool {
		return strings.Contains(logs.String(), `"event":"half_open"`)
	})

	// Exactly one coordinator made the half-open transition, and both
	// transitions were logged with the fields an incident review needs.
	var trip, half int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if ev["message"] != "transition" {
			continue
		}
		for _, k := range []string{"event", "breaker", "old_state", "new_state", "version", "reason", "failure_count", "last_error", "actor", "timestamp"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("transition log lacks %q: %s", k, line)
			}
		}
		switch ev["event"] {
		case "trip":
			trip++
			if ev["last_error"] != "HTTP 503" || ev["failure_count"] != float64(5) || ev["actor"] != "a1" {
				t.Errorf("trip log = %s", line)
			}
		case "half_open":
			half++
		}
	}
	if trip != 1 || half != 1 {
		t.Fatalf("logged %d trips and %d half-opens, want 1 and 1:\n%s", trip, half, logs.String())
	}
	names, err := store.Names(ctx)
	if err != nil || len(names) != 1 || names[0] != "openai" {
		t.Fatalf("registry = %v %v", names, err)
	}
}

// valid checks a report built in code, as the API's decoder does.
func valid(t *testing.T, r report.Report) report.Valid {
	t.Helper()
	v, err := report.Check(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCoordinator_IngestTakesOnlyCheckedReports(t *testing.T) {
	b := redistest.Mini(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	// The zero Valid (no Check) is an empty heartbeat: nothing to
	// register, nothing applied.
	if _, err := c.Ingest(context.Background(), report.Valid{}); err != nil {
		t.Fatalf("the zero report: %v", err)
	}
	if _, err := report.Check(report.Report{Agent: "a1", Breakers: []report.Breaker{{Name: "bad name"}}}); err == nil {
		t.Fatal("an invalid report passed the check")
	}
	if n, _ := store.Names(context.Background()); len(n) != 0 {
		t.Fatalf("registered %v", n)
	}
}

func TestCoordinator_TicksBreakersItLearnsFromPublishedChanges(t *testing.T) {
	b := redistest.Real(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	cfg, err := config.Parse([]byte("defaults:\n  open_timeout: 100ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	// A registry refresh far in the future: only the published change can
	// tell this coordinator about the breaker.
	c, err := coordinator.New(coordinator.Config{TickInterval: 10 * time.Millisecond, RegistryRefresh: time.Hour}, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Wait until Run has subscribed: a message before that is the
	// registry's business, not this test's.
	testcluster.Eventually(t, 5*time.Second, "the coordinator subscribed", func() bool {
		n, err := b.Client.PubSubNumSub(ctx, store.Channel()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[store.Channel()] >= 1
	})
	if _, err := store.Report(ctx, "elsewhere", cfg.Policy("elsewhere"), "other", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 5*time.Second, "the breaker tripped elsewhere half-opens", func() bool {
		s, err := store.Snapshots(ctx, []string{"elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		return s[0].State == statestore.StateHalfOpen
	})
}

func TestCoordinator_HeartbeatsThrottledButFlagChangesAtOnce(t *testing.T) {
	b := redistest.Mini(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	degraded := func() bool {
		ags, err := c.Agents(ctx)
		if err != nil || len(ags) != 1 {
			t.Fatalf("agents = %+v %v", ags, err)
		}
		return ags[0].Degraded
	}
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Breakers: []report.Breaker{}})); err != nil {
		t.Fatal(err)
	}
	if degraded() {
		t.Fatal("a healthy heartbeat recorded as degraded")
	}
	// Within the same second: the flag change is written at once.
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Degraded: true, Breakers: []report.Breaker{}})); err != nil {
		t.Fatal(err)
	}
	if !degraded() {
		t.Fatal("the degraded flag waited for the throttle")
	}
	b.Mini.Del("fusebox:agents")
	if _, err := c.Ingest(ctx, valid(t, report.Report{Agent: "a1", Degraded: true, Breakers: []report.Breaker{}})); err != nil {
		t.Fatal(err)
	}
	if ags, _ := c.Agents(ctx); len(ags) != 0 {
		t.Fatalf("an unchanged heartbeat within a second was written again: %+v", ags)
	}
}
