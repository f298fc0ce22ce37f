package bench_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
)

// BenchmarkRegistry prints the registry table (make bench): what an idle
// coordinator's tick and registry refresh, a page of GET /v1/breakers
// and a /metrics scrape cost at each registry size.
// FUSEBOX_REGISTRY_SIZES overrides the sizes ("100,1000,10000").
func BenchmarkRegistry(b *testing.B) {
	sizes := []int{100, 1000, 10000}
	if v := os.Getenv("FUSEBOX_REGISTRY_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("FUSEBOX_REGISTRY_SIZES: %q is not a registry size", f)
			}
			sizes = append(sizes, n)
		}
	}
	srv := redistest.Start(b)
	cfg := bench.RegistryConfig{RedisAddr: srv.Addr, Sizes: sizes, Progress: os.Stderr}
	for b.Loop() {
		rows, err := bench.RunRegistry(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bench.WriteRegistryTable(os.Stdout, cfg, rows)
		last := rows[len(rows)-1]
		b.ReportMetric(float64(last.Tick.Microseconds()), "tick-µs")
		b.ReportMetric(float64(last.Refresh.Microseconds()), "refresh-µs")
	}
}

// TestRunRegistry runs a tiny registry and checks the table, not its
// numbers.
func TestRunRegistry(t *testing.T) {
	srv := redistest.Start(t)
	cfg := bench.RegistryConfig{RedisAddr: srv.Addr, Sizes: []int{30}, Open: 3, Steady: time.Second, Requests: 3}
	rows, err := bench.RunRegistry(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.Breakers != 30 || r.Ticks < 5 || r.Tick <= 0 || r.RedisCmdsPerSec <= 0 || r.PageP50 <= 0 || r.ScrapeP50 <= 0 ||
		r.PageBytes == 0 || !(r.ScrapeBytes > r.PageBytes) {
		t.Fatalf("row %+v", r)
	}
	var out bytes.Buffer
	bench.WriteRegistryTable(&out, cfg, rows)
	if !strings.Contains(out.String(), "scrape Redis cmds") {
		t.Fatalf("table:\n%s", out.String())
	}
}
