package coordinator_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// scripts counts the script calls a client makes.
type scripts struct{ n atomic.Int64 }

func (s *scripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			s.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (s *scripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestService_AggregatesSuccesses: many agents' success-only reports cost
// one script call per breaker per interval; a failure is applied at once;
// successes older than a run of failures do not end it.
func TestService_AggregatesSuccesses(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	hook := &scripts{}
	rdb.AddHook(hook)
	store, err := statestore.New(rdb, statestore.Options{Prefix: "agg"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("defaults:\n  failure_rate: 99\n  min_calls: 1000000\n  window: 60s\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Config{ID: "agg-coord", AggregateInterval: 200 * time.Millisecond, TickInterval: time.Hour}, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	v0 := int64(0)
	part := func(agent string, ok int64) report.Report {
		return report.Report{Agent: agent, Boot: "b", Seq: 1, Breakers: []report.Breaker{{Name: "openai", Version: &v0, OK: ok}}}
	}
	// The first report registers the breaker (a script of its own).
	if _, err := c.Ingest(ctx, valid(t, part("agent-first", 0+1))); err != nil {
		t.Fatal(err)
	}
	before := hook.n.Load()
	for i := range 49 {
		if _, err := c.Ingest(ctx, valid(t, part(fmt.Sprintf("agent-%d", i), 3))); err != nil {
			t.Fatal(err)
		}
	}
	var d []statestore.Detail
	testcluster.Eventually(t, 3*time.Second, "the successes applied", func() bool {
		d, _ = store.Details(ctx, []string{"openai"})
		return d[0].WindowCalls == 148
	})
	if n := hook.n.Load() - before; n > 2 {
		t.Fatalf("49 agents' successes took %d script calls, want 1 (2 if an interval ended between them)", n)
	}
	// A failure goes at once, without waiting for the interval.
	f := report.Report{Agent: "agent-0", Boot: "b", Seq: 2, Breakers: []report.Breaker{{Name: "openai", Version: &v0, Fail: 3, TrailingFail: 3}}}
	if _, err := c.Ingest(ctx, valid(t, f)); err != nil {
		t.Fatal(err)
	}
	if d, _ = store.Details(ctx, []string{"openai"}); d[0].FailureCount != 3 {
		t.Fatalf("the failures were not applied at once: count %d", d[0].FailureCount)
	}
	// Successes that happened before those failures (reported late) do
	// not end the run; fresh ones do.
	late := part("agent-9", 5)
	late.Seq = 2
	late.Breakers[0].LastOKAgeMS = 5000
	if _, err := c.Ingest(ctx, valid(t, late)); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 3*time.Second, "the late successes applied", func() bool {
		d, _ = store.Details(ctx, []string{"openai"})
		return d[0].WindowCalls == 156
	})
	if d[0].FailureCount != 3 {
		t.Fatalf("successes from before the failures ended the run: count %d", d[0].FailureCount)
	}
}
