package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

func reportOf(names ...string) report.Report {
	r := report.Report{Agent: "a1", Breakers: []report.Breaker{}}
	for _, n := range names {
		// A failure too: parts with only successes may be gathered and
		// applied later; these are applied at once.
		r.Breakers = append(r.Breakers, report.Breaker{Name: n, OK: 1, Fail: 1})
	}
	return r
}

// An agent token once registered breakers without bound: 23 reports of
// 1,000 new names each gave 23,017 permanent breakers. Past a limit a report is refused whole.
func TestService_IngestWithinTheRegistrationLimits(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		store, _ := statestore.New(b.Client, statestore.Options{})
		cfg, err := config.Parse([]byte("breakers:\n  configured: {}\n"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := coordinator.New(coordinator.Config{Limits: statestore.Limits{MaxBreakers: 8, MaxPerAgent: 3}}, store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.Ingest(ctx, valid(t, reportOf("x-0", "x-1", "x-2", "configured"))); err != nil {
			t.Fatalf("three names and a configured one: %v", err)
		}
		// A fourth new name: refused whole, the known breaker's part too.
		r := reportOf("x-0", "x-3")
		r.Breakers[0].Fail, r.Breakers[0].TrailingFail = 4, 4
		_, err = c.Ingest(ctx, valid(t, r))
		var le *statestore.LimitError
		if !errors.As(err, &le) || le.Limit != "max_breakers_per_agent" {
			t.Fatalf("a fourth name: %v, want max_breakers_per_agent", err)
		}
		if d, _ := store.Details(ctx, []string{"x-0", "x-3"}); d[0].FailureCount != 0 || d[1].Exists {
			t.Fatalf("a refused report changed state: %+v", d)
		}
		// Other agents fill the registry up to its maximum, and no further.
		for i := range 5 { // 4 registered: 4 fit, the 5th does not
			r := reportOf(fmt.Sprintf("y-%d", i))
			r.Agent = fmt.Sprintf("other-%d", i)
			_, err := c.Ingest(ctx, valid(t, r))
			if i < 4 && err != nil {
				t.Fatalf("other-%d: %v", i, err)
			}
			if i == 4 && (!errors.As(err, &le) || le.Limit != "max_breakers") {
				t.Fatalf("past max_breakers (8): %v", err)
			}
		}
		// Known names keep flowing; an operator may still create one.
		if _, err := c.Ingest(ctx, valid(t, reportOf("x-1"))); err != nil {
			t.Fatalf("a known name: %v", err)
		}
		if _, err := c.Force(ctx, "ops-made", statestore.OverrideOpen, 0, "ops", "incident"); err != nil {
			t.Fatalf("an operator's breaker past the limit: %v", err)
		}
	})
}

func TestService_PagesTheBreakerList(t *testing.T) {
	b := redistest.Mini(t)
	store, _ := statestore.New(b.Client, statestore.Options{})
	c, err := coordinator.New(coordinator.Config{}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var all []string
	for i := range 25 {
		n := fmt.Sprintf("svc-%02d", i)
		all = append(all, n)
	}
	if _, err := c.Ingest(ctx, valid(t, reportOf(all...))); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := c.Breakers(ctx, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Breakers {
			got = append(got, b.Name)
		}
		if pages == 0 {
			// A breaker that appears mid-walk sorts after the cursor: seen.
			if _, err := c.Ingest(ctx, valid(t, reportOf("svc-99"))); err != nil {
				t.Fatal(err)
			}
			all = append(all, "svc-99")
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("pages gave %v, want %v", got, all)
	}
	if _, err := c.Breakers(ctx, "", coordinator.MaxPageSize+1); !errors.Is(err, statestore.ErrInvalid) {
		t.Fatalf("an oversized page: %v", err)
	}
}
