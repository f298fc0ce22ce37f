package bench_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/redistest"
)

// BenchmarkProxy prints the proxy table (make bench): the latency nginx,
// Go's bare reverse proxy and the sidecar add to the fake provider at fixed rates, and what the
// sidecar allocates per request. FUSEBOX_PROXY_RATES overrides the rates
// ("500,2000,5000"), FUSEBOX_PROXY_DURATION the time per path and rate,
// FUSEBOX_PROXY_ROUNDS the turns it is split into (2),
// FUSEBOX_PROXY_PROFILE names a directory for CPU and allocation profiles
// of the sidecar (built with -tags pprof then), FUSEBOX_PROXY_AGENTS adds
// sidecar binaries to measure beside this tree's ("before=/tmp/agent",
// one built from an earlier commit).
func BenchmarkProxy(b *testing.B) {
	cfg := bench.ProxyConfig{Progress: os.Stderr, ProfileDir: os.Getenv("FUSEBOX_PROXY_PROFILE")}
	if v := os.Getenv("FUSEBOX_PROXY_RATES"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("FUSEBOX_PROXY_RATES: %q is not a rate", f)
			}
			cfg.Rates = append(cfg.Rates, n)
		}
	}
	if v := os.Getenv("FUSEBOX_PROXY_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("FUSEBOX_PROXY_DURATION: %q is not a duration", v)
		}
		cfg.Duration = d
	}
	if v := os.Getenv("FUSEBOX_PROXY_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FUSEBOX_PROXY_ROUNDS: %q is not a number of turns", v)
		}
		cfg.Rounds = n
	}
	if v := os.Getenv("FUSEBOX_PROXY_AGENTS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			name, bin, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok || name == "" || bin == "" {
				b.Fatalf("FUSEBOX_PROXY_AGENTS: %q is not name=path-to-agent-binary", f)
			}
			cfg.Agents = append(cfg.Agents, bench.ProxyAgent{Name: name, Bin: bin})
		}
	}
	srv := redistest.Start(b)
	cfg.RedisAddr = srv.Addr
	for b.Loop() {
		rows, err := bench.RunProxy(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bench.WriteProxyTable(os.Stdout, cfg, rows)
		last := rows[len(rows)-1]
		b.ReportMetric(float64(last.Path("fusebox").Added[1].Microseconds()), "fusebox-added-p99-µs")
		b.ReportMetric(float64(last.Path("nginx").Added[1].Microseconds()), "nginx-added-p99-µs")
		b.ReportMetric(float64(last.Path("net/http").Added[1].Microseconds()), "nethttp-added-p99-µs")
		b.ReportMetric(last.Path("fusebox").AllocsPerReq, "sidecar-allocs/req")
	}
}

// TestRunProxy runs every path briefly at a low rate and checks the
// harness (every request answered through each path, the proxies' costs
// read), not its numbers.
func TestRunProxy(t *testing.T) {
	srv := redistest.Start(t)
	check := func(t *testing.T, cfg bench.ProxyConfig) bench.ProxyRow {
		t.Helper()
		rows, err := bench.RunProxy(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := rows[0]
		want := []string{"direct", "nginx", "net/http", "fusebox"}
		for _, a := range cfg.Agents {
			want = append(want, a.Name)
		}
		if len(r.Paths) != len(want) {
			t.Fatalf("paths: %+v, want %v", r.Paths, want)
		}
		for i, p := range r.Paths {
			if p.Name != want[i] || p.Requests != 200 || p.Errors != 0 || p.P50 <= 0 || p.P99 < p.P50 {
				t.Errorf("path %d: %+v", i, p)
			}
			if i >= 3 {
				// Less than 20 allocations a request is not a sidecar
				// that read, checked and forwarded the request; more
				// than 100,000 is a reading gone wrong.
				if a := p.AllocsPerReq; a < 20 || a > 1e5 || p.BytesPerReq < 1024 {
					t.Errorf("%s: allocations per request: %+v", p.Name, p)
				}
				// A Go program's heap is at least a few hundred KiB; a
				// sidecar's, far less than a GiB at 200 requests a second.
				if p.HeapMB < 0.25 || p.HeapMB > 1024 {
					t.Errorf("%s: heap: %+v", p.Name, p)
				}
			}
		}
		var out bytes.Buffer
		bench.WriteProxyTable(&out, cfg, rows)
		if !strings.Contains(out.String(), "added p99") || !strings.Contains(out.String(), "200/s") {
			t.Fatalf("table:\n%s", out.String())
		}
		return r
	}
	base := bench.ProxyConfig{RedisAddr: srv.Addr, Rates: []int{200}, Duration: time.Second, Rounds: 1, Warmup: 100 * time.Millisecond}
	t.Run("each proxy runs as its own process, another sidecar binary beside", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "agent")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/fusebox-io/fusebox/cmd/agent").CombinedOutput(); err != nil {
			t.Fatalf("build: %v: %s", err, out)
		}
		cfg := base
		cfg.Agents = []bench.ProxyAgent{{Name: "again", Bin: bin}}
		check(t, cfg)
	})
	t.Run("with a profile directory the sidecar is profiled", func(t *testing.T) {
		cfg := base
		cfg.ProfileDir = t.TempDir()
		check(t, cfg)
		for _, f := range []string{"cpu-200.pprof", "allocs-200.pprof", "allocs-200-base.pprof"} {
			if st, err := os.Stat(cfg.ProfileDir + "/" + f); err != nil || st.Size() == 0 {
				t.Errorf("profile %s: %v", f, err)
			}
		}
	})
}
