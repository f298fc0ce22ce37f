package bench_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/statestore"
)

// BenchmarkFanout prints the fan-out table (make bench): plain PUBLISH
// against sharded SPUBLISH at 10, 100 and 500 subscribers, on a Redis
// Cluster of three masters and on one redis-server.
func BenchmarkFanout(b *testing.B) {
	c := redistest.StartCluster(b, 3)
	one := redistest.Start(b)
	cfg := bench.FanoutConfig{ClusterAddrs: c.Addrs(), StandaloneAddr: one.Addr, Subscribers: []int{10, 100, 500}, Progress: os.Stderr}
	for b.Loop() {
		rows, err := bench.RunFanout(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bench.WriteFanoutTable(os.Stdout, cfg, rows)
		for _, r := range rows {
			if r.Subscribers == 500 && r.Topology != "standalone" {
				b.ReportMetric(r.Delivered, string(r.Mode)+"-delivered/change")
			}
		}
	}
}

// TestRunFanout runs a tiny fan-out and checks what does not depend on
// the machine: who gets each message, and which mode crosses the bus.
func TestRunFanout(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	cfg := bench.FanoutConfig{ClusterAddrs: c.Addrs(), Subscribers: []int{6}, Changes: 6}
	rows, err := bench.RunFanout(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Mode != statestore.PubSubPlain || rows[1].Mode != statestore.PubSubSharded {
		t.Fatalf("rows %+v", rows)
	}
	plain, sharded := rows[0], rows[1]
	// 6 subscribers over 30 breakers: one user per breaker.
	if plain.Delivered != 6 || sharded.Delivered != 1 {
		t.Fatalf("delivered per change: plain %.1f (want every subscriber, 6), sharded %.1f (want the breaker's one user)", plain.Delivered, sharded.Delivered)
	}
	// A PUBLISH goes from the breaker's node to both others; an SPUBLISH
	// stays on its node (no replicas here).
	if plain.BusMessages != 2 || sharded.BusMessages != 0 {
		t.Fatalf("cluster-bus publishes per change: plain %.1f (want 2), sharded %.1f (want 0)", plain.BusMessages, sharded.BusMessages)
	}
	if plain.PropagateP99 <= 0 || sharded.PropagateP99 <= 0 {
		t.Fatalf("propagation plain %s, sharded %s", plain.PropagateP99, sharded.PropagateP99)
	}
	var out bytes.Buffer
	bench.WriteFanoutTable(&out, cfg, rows)
	if !strings.Contains(out.String(), "messages delivered") || strings.Count(out.String(), "cluster (3 masters)") != 2 {
		t.Fatalf("table:\n%s", out.String())
	}
}
