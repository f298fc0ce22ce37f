package agentlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestBreaker_AllowDoesNotAllocate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 1m\n"})
	a := newAgent(t, c, "a1")
	b := breaker(t, a, "openai")
	closed := testing.AllocsPerRun(1000, func() {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(agentlib.Success())
	})
	if closed != 0 {
		t.Fatalf("Allow+done while closed: %v allocs/op, want 0", closed)
	}
	if _, err := c.Store.Report(context.Background(), "openai", c.Config.Policy("openai"), "x", statestore.Batch{Fail: 5, TrailingFail: 5}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, "open", func() bool { return b.State().State == statestore.StateOpen })
	open := testing.AllocsPerRun(1000, func() {
		if _, err := b.Allow(); err == nil {
			t.Fatal("allowed while open")
		}
	})
	if open != 0 {
		t.Fatalf("Allow while open: %v allocs/op, want 0", open)
	}
}
