package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

// NginxInstallHint says how to get nginx on this project's machines.
const NginxInstallHint = "nginx not found: install Debian's nginx-light with `./scripts/ensure-nginx.sh` (make test and make bench run it)"

// ProxyBody is the request every path is sent: a non-streamed chat
// completion of a few turns, about 1.3 KB, as an app would send it.
var ProxyBody = `{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are a helpful assistant for a travel agency. Answer briefly, in the customer's language, and never invent prices."},` +
	`{"role":"user","content":"` + strings.Repeat("I would like to visit Lisbon in May for a week with two children. ", 8) + `"},` +
	`{"role":"assistant","content":"Lisbon in May is lovely: mild, sunny and not yet crowded. Do you prefer the old town or the beaches?"},` +
	`{"role":"user","content":"The old town, near a tram line, and a day trip to Sintra."}],` +
	`"max_tokens":256,"temperature":0.2,"user":"customer-1234"}`

// ProxyConfig shapes a proxy run: the fake provider called directly,
// through nginx and through the fusebox sidecar, at fixed open-loop
// rates, the paths taking turns.
type ProxyConfig struct {
	// RedisAddr is a running redis-server (host:port) the run may use.
	RedisAddr string
	// Rates are requests per second, one row each. Default 500, 2000,
	// 5000.
	Rates []int
	// Duration is how long each path is measured at each rate, split
	// over Rounds. Default 10s.
	Duration time.Duration
	// Rounds: each rate's paths take turns this many times (direct,
	// nginx, sidecar, direct, ...), so a slow moment of the machine
	// falls on all of them. Default 2.
	Rounds int
	// Warmup is sent before each measured turn and not counted.
	// Default 500ms.
	Warmup time.Duration
	// SidecarConfig is the sidecar's YAML; its base URLs
	// http://127.0.0.1:9090 are pointed at the fake provider. Default
	// ../examples/sidecar.yaml (as shipped).
	SidecarConfig string
	// ProfileDir, when set, receives profiles of the sidecar (fusebox),
	// built with -tags pprof for them (cmd/agent/pprof.go): a CPU
	// profile of each of its turns of the first round (cpu-<rate>.pprof)
	// and heap profiles before and after them (allocs-<rate>-base.pprof,
	// allocs-<rate>.pprof: compare with go tool pprof
	// -sample_index=alloc_space -base).
	ProfileDir string
	// Agents are more sidecar binaries to measure, each beside the
	// one built from this tree (fusebox), the same way.
	Agents []ProxyAgent
	// Progress receives a line per turn; nil discards.
	Progress io.Writer
}

// ProxyAgent is a sidecar binary to measure beside the one built from
// this tree: one built from an earlier commit, for a before-and-after
// in one run.
type ProxyAgent struct {
	Name string // its row's name
	Bin  string // a cmd/agent binary
}

// ProxyPath is one path's measurements at one rate.
type ProxyPath struct {
	// Name: direct, nginx, net/http (Go's bare reverse proxy,
	// bench/internal/goproxy), fusebox, or a ProxyAgent's.
	Name     string
	Requests int
	Errors   int // not a 200, or no answer
	Late     int // sent more than 1 ms after their time (the generator fell behind)
	P50, P99 time.Duration
	Max      time.Duration
	// Added is p50 and p99 less the direct path's.
	Added [2]time.Duration
	// CPUPerReq is the proxy's CPU time per request (nginx: its master
	// and workers; a sidecar: its process); 0 for the direct path.
	CPUPerReq time.Duration
	// AllocsPerReq and BytesPerReq are a sidecar's heap allocations per
	// request (its Go runtime's counters, on its /metrics); 0 for the
	// other paths.
	AllocsPerReq, BytesPerReq float64
	// HeapMB is the largest heap a sidecar held at the end of a turn
	// (go_memstats_heap_alloc_bytes: live objects and garbage not yet
	// swept), in MiB; 0 for the other paths. It stays flat when nothing
	// outlives its request.
	HeapMB float64
}

// ProxyRow is one rate's measurements of every path: direct, nginx,
// net/http, fusebox, then the ProxyAgents.
type ProxyRow struct {
	Rate  int
	Paths []ProxyPath
}

// Path is the named path's measurements (zero when there is none).
func (r ProxyRow) Path(name string) ProxyPath {
	for _, p := range r.Paths {
		if p.Name == name {
			return p
		}
	}
	return ProxyPath{}
}

// proxyTarget is one path: its URL, and how to read what its proxy
// spent so far.
type proxyTarget struct {
	name string
	url  string
	// cpu is the proxy's CPU time; nil for none.
	cpu func() (time.Duration, error)
	// allocs is the sidecar's heap: its allocations so far (count,
	// bytes) and its heap now; nil for none.
	allocs func() (sidecarHeap, error)
	// pprof is the sidecar's net/http/pprof (ProfileDir); "" for none.
	pprof string
}

// RunProxy measures every path at each rate.
func RunProxy(ctx context.Context, cfg ProxyConfig) ([]ProxyRow, error) {
	cfg = cfg.withDefaults()
	nginxBin, err := findNginx()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "fusebox-proxy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return runProxy(ctx, cfg, dir, nginxBin)
}

func (cfg ProxyConfig) withDefaults() ProxyConfig {
	if len(cfg.Rates) == 0 {
		cfg.Rates = []int{500, 2000, 5000}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 500 * time.Millisecond
	}
	if cfg.SidecarConfig == "" {
		cfg.SidecarConfig = "../examples/sidecar.yaml"
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	return cfg
}

func runProxy(ctx context.Context, cfg ProxyConfig, dir, nginxBin string) ([]ProxyRow, error) {
	// The fake provider, nginx, the coordinator and the sidecar each run
	// as a process of their own, built as shipped; this process only
	// sends the load, so neither proxy shares its CPU, heap or scheduler
	// with the generator.
	fmt.Fprintln(cfg.Progress, "proxy: building the fake provider, the coordinator and the sidecar")
	out, err := exec.Command("go", "build", "-o", dir+"/",
		"github.com/fusebox-io/fusebox/cmd/fakeprovider", "github.com/fusebox-io/fusebox/cmd/coordinator", "github.com/fusebox-io/fusebox/cmd/agent",
		"github.com/fusebox-io/fusebox/bench/internal/goproxy").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("build: %v: %s", err, out)
	}
	if cfg.ProfileDir != "" {
		out, err := exec.Command("go", "build", "-tags", "pprof", "-o", filepath.Join(dir, "agent-pprof"), "github.com/fusebox-io/fusebox/cmd/agent").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build: %v: %s", err, out)
		}
	}
	fp, err := startFakeProvider(ctx, filepath.Join(dir, "fakeprovider"))
	if err != nil {
		return nil, err
	}
	fpURL := fp.url
	ngx, err := startNginx(ctx, nginxBin, filepath.Join(dir, "nginx"), strings.TrimPrefix(fpURL, "http://"))
	if err != nil {
		return nil, err
	}
	defer ngx.stop()
	goProxy, err := startListening(ctx, filepath.Join(dir, "goproxy"), "-upstream", fpURL)
	if err != nil {
		return nil, err
	}
	redisURL := "redis://" + cfg.RedisAddr
	token := "proxy-token-0123456789abcdef"
	coord, err := startCoordinator(ctx, filepath.Join(dir, "coordinator"), redisURL, "proxybench", token, "defaults:\n  consecutive_failures: 5\n")
	if err != nil {
		return nil, err
	}
	defer coord.stop()
	data, err := os.ReadFile(cfg.SidecarConfig)
	if err != nil {
		return nil, err
	}
	scConfig := filepath.Join(dir, "sidecar.yaml")
	if err := os.WriteFile(scConfig, []byte(strings.ReplaceAll(string(data), "http://127.0.0.1:9090", fpURL)), 0o600); err != nil {
		return nil, err
	}
	targets := []proxyTarget{
		{name: "direct", url: fpURL + "/openai/v1/chat/completions"},
		{name: "nginx", url: ngx.url + "/openai/v1/chat/completions", cpu: ngx.cpu},
		{name: "net/http", url: goProxy.url + "/openai/v1/chat/completions", cpu: goProxy.cpu},
	}
	agents := append([]ProxyAgent{{Name: "fusebox", Bin: filepath.Join(dir, "agent")}}, cfg.Agents...)
	for i, ag := range agents {
		var env []string
		var pprofURL string
		if cfg.ProfileDir != "" && i == 0 {
			port, err := freeLoopbackPort()
			if err != nil {
				return nil, err
			}
			ag.Bin, pprofURL = filepath.Join(dir, "agent-pprof"), fmt.Sprintf("http://127.0.0.1:%d", port)
			env = []string{"FUSEBOX_PPROF_LISTEN=" + strings.TrimPrefix(pprofURL, "http://")}
		}
		sc, err := startSidecar(ctx, ag.Bin, scConfig, coord.url, redisURL, token, fmt.Sprintf("proxy-sidecar-%d", i), env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ag.Name, err)
		}
		defer sc.stop()
		targets = append(targets, proxyTarget{name: ag.Name, url: sc.url + "/v1/chat/completions",
			cpu: sc.cpu, allocs: sc.allocs, pprof: pprofURL})
	}
	// Every path answers before anything is measured.
	for _, t := range targets {
		if err := checkPath(ctx, t.url); err != nil {
			return nil, err
		}
	}

	var rows []ProxyRow
	for _, rate := range cfg.Rates {
		row, err := runProxyRate(ctx, cfg, targets, rate)
		if err != nil {
			return rows, fmt.Errorf("%d req/s: %w", rate, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func runProxyRate(ctx context.Context, cfg ProxyConfig, targets []proxyTarget, rate int) (ProxyRow, error) {
	row := ProxyRow{Rate: rate, Paths: make([]ProxyPath, len(targets))}
	lat := make([][]time.Duration, len(targets))
	slice := cfg.Duration / time.Duration(cfg.Rounds)
	cpu := make([]time.Duration, len(targets))
	mallocs, bytes, heap := make([]uint64, len(targets)), make([]uint64, len(targets)), make([]uint64, len(targets))
	for round := range cfg.Rounds {
		for i, t := range targets {
			fmt.Fprintf(cfg.Progress, "proxy: %d req/s, %s, round %d of %d\n", rate, t.name, round+1, cfg.Rounds)
			if _, err := openLoop(ctx, t.url, rate, cfg.Warmup); err != nil {
				return row, err
			}
			var err error
			var profiled chan error
			if t.pprof != "" && round == 0 {
				if profiled, err = startProfiles(ctx, t.pprof, cfg.ProfileDir, rate, slice); err != nil {
					return row, err
				}
			}
			var h0 sidecarHeap
			var c0 time.Duration
			h0, c0, err = t.spent()
			if err != nil {
				return row, err
			}
			res, err := openLoop(ctx, t.url, rate, slice)
			if err != nil {
				return row, err
			}
			h1, c1, err := t.spent()
			if err != nil {
				return row, err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return row, err
				}
				if err := getProfile(ctx, t.pprof+"/debug/pprof/allocs", filepath.Join(cfg.ProfileDir, fmt.Sprintf("allocs-%d.pprof", rate))); err != nil {
					return row, err
				}
			}
			mallocs[i] += h1.mallocs - h0.mallocs
			bytes[i] += h1.bytes - h0.bytes
			heap[i] = max(heap[i], h1.inUse)
			cpu[i] += c1 - c0
			lat[i] = append(lat[i], res.latencies...)
			p := &row.Paths[i]
			p.Requests += len(res.latencies)
			p.Errors += res.errors
			p.Late += res.late
		}
	}
	for i, t := range targets {
		p := &row.Paths[i]
		p.Name = t.name
		l := lat[i]
		slices.Sort(l)
		if len(l) == 0 {
			return row, fmt.Errorf("%s: no request answered", t.name)
		}
		p.P50, p.P99, p.Max = l[len(l)/2], l[min(len(l)-1, len(l)*99/100)], l[len(l)-1]
		n := float64(p.Requests)
		p.CPUPerReq = cpu[i] / time.Duration(p.Requests)
		p.AllocsPerReq, p.BytesPerReq = float64(mallocs[i])/n, float64(bytes[i])/n
		p.HeapMB = float64(heap[i]) / (1 << 20)
	}
	for i := range row.Paths {
		p := &row.Paths[i]
		p.Added = [2]time.Duration{p.P50 - row.Paths[0].P50, p.P99 - row.Paths[0].P99}
	}
	return row, nil
}

// spent is what the target's proxy spent so far: its heap (a sidecar's)
// and CPU time.
func (t proxyTarget) spent() (heap sidecarHeap, cpu time.Duration, err error) {
	if t.allocs != nil {
		if heap, err = t.allocs(); err != nil {
			return
		}
	}
	if t.cpu != nil {
		cpu, err = t.cpu()
	}
	return
}

// loadResult is one open-loop run: the latency of every answered
// request, in the order sent.
type loadResult struct {
	latencies []time.Duration
	errors    int
	late      int
}

// maxInFlight bounds the generator: a request that would be one more
// than this many at once is not sent, and counts as an error.
const maxInFlight = 2000

var loadClient = &http.Client{
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	},
	Timeout: 10 * time.Second,
}

// openLoop sends rate requests a second to url for d, each at its
// scheduled time whether or not the earlier ones were answered (an open
// loop: a slow answer does not slow the load down). Timers on Linux wake
// a sleeping Go program about every millisecond, so requests that fell
// due meanwhile leave together; each request's latency is measured from
// when it left, the same way for every path.
func openLoop(ctx context.Context, url string, rate int, d time.Duration) (loadResult, error) {
	n := int(float64(rate) * d.Seconds())
	lat := make([]time.Duration, n)
	var errs, late atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	body := []byte(ProxyBody)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var err error
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			if !sleepCtx(ctx, w) {
				err = ctx.Err()
				break
			}
		}
		if time.Since(due) > time.Millisecond+interval {
			late.Add(1)
		}
		select {
		case sem <- struct{}{}:
		default:
			// The path is this far behind: the request is not sent, and
			// counts as an error.
			errs.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t0 := time.Now()
			if !post(ctx, url, body) {
				errs.Add(1)
				lat[i] = -1
				return
			}
			lat[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	res := loadResult{errors: int(errs.Load()), late: int(late.Load()), latencies: lat[:0]}
	for _, l := range lat {
		if l > 0 {
			res.latencies = append(res.latencies, l)
		}
	}
	return res, err
}

// post sends one request and reads its answer; true on a 200.
func post(ctx context.Context, url string, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-proxy-bench-0000")
	resp, err := loadClient.Do(req)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}

func checkPath(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(ProxyBody))
	req.Header.Set("Content-Type", "application/json")
	resp, err := loadClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"chat.completion"`)) {
		return fmt.Errorf("%s: HTTP %d %s", url, resp.StatusCode, b)
	}
	return nil
}

// startProfiles saves the sidecar's heap profile (allocs-<rate>-base)
// and starts a CPU profile of d (cpu-<rate>), whose end the channel
// reports.
func startProfiles(ctx context.Context, pprofURL, dir string, rate int, d time.Duration) (chan error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := getProfile(ctx, pprofURL+"/debug/pprof/allocs", filepath.Join(dir, fmt.Sprintf("allocs-%d-base.pprof", rate))); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Round(time.Second)/time.Second))
		done <- getProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofURL, secs), filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", rate)))
	}()
	return done, nil
}

// getProfile saves what a pprof URL answers to path.
func getProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("pprof %s: HTTP %d %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// startFakeProvider runs cmd/fakeprovider on a free loopback port.
func startFakeProvider(ctx context.Context, bin string) (*proc, error) {
	return startListening(ctx, bin)
}

// startListening runs bin with -listen 127.0.0.1:0 and args until ctx
// ends; its URL is the one it logs ({"listen":"http://…"}).
func startListening(ctx context.Context, bin string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "FUSEBOX_LOG_FORMAT=json", "FUSEBOX_LOG_LEVEL=info")
	return startProc(cmd, "listen")
}

func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New(NginxInstallHint)
}

// nginxConf is nginx as a user would put it in front of a provider:
// proxy_pass to an upstream with keepalive connections, HTTP/1.1, no
// access log; a worker per core.
const nginxConf = `%s
worker_processes auto;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_requests 100000;
    upstream provider {
        server %[3]s;
        keepalive 512;
    }
    server {
        listen %[4]s;
        location / {
            proxy_pass http://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// nginxProc is nginx running as a child process.
type nginxProc struct {
	url  string
	cmd  *exec.Cmd
	stop func()
}

// cpu is the CPU time of nginx's master and its workers so far.
func (n *nginxProc) cpu() (time.Duration, error) {
	pid := n.cmd.Process.Pid
	total, err := processCPU(pid)
	if err != nil {
		return 0, err
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(children)) {
		c, _ := strconv.Atoi(f)
		d, err := processCPU(c)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// startNginx runs nginx as a child process with a generated config in
// prefix, proxying a free loopback port to upstream (host:port).
func startNginx(ctx context.Context, bin, prefix, upstream string) (*nginxProc, error) {
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers reach the temp prefix
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, prefix, upstream, addr)), 0o644); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: workers finish, then exit
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return &nginxProc{url: "http://" + addr, cmd: cmd, stop: stop}, nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			return nil, fmt.Errorf("nginx exited: %s %s", out.String(), log)
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("nginx did not listen within 10s")
		}
	}
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sidecarProc is the sidecar (cmd/agent) running as its own process.
type sidecarProc struct {
	*proc
	// scrape is what one read of /metrics allocates (count, bytes);
	// seen counts the reads since it was measured.
	scrape [2]uint64
	seen   uint64
}

// startSidecar runs cmd/agent on a free loopback port with the config
// file, against the coordinator and Redis.
func startSidecar(ctx context.Context, bin, configPath, coordURL, redisURL, token, id string, env []string) (*sidecarProc, error) {
	cmd := exec.CommandContext(ctx, bin, "-listen", "127.0.0.1:0", "-config", configPath, "-coordinator-url", coordURL,
		"-redis-url", redisURL, "-token", token, "-prefix", "proxybench", "-id", id)
	cmd.Env = append(append(os.Environ(), "FUSEBOX_LOG_FORMAT=json", "FUSEBOX_LOG_LEVEL=info"), env...)
	p, err := startProc(cmd, "listen")
	if err != nil {
		return nil, err
	}
	return &sidecarProc{proc: p}, nil
}

// sidecarHeap is a reading of a sidecar's Go heap, from its /metrics.
type sidecarHeap struct {
	mallocs, bytes uint64 // allocated so far: objects, bytes
	inUse          uint64 // go_memstats_heap_alloc_bytes now
}

// allocs reads the sidecar's heap: its allocations so far, less what the
// readings themselves cost it, and what it holds now.
func (p *sidecarProc) allocs() (sidecarHeap, error) {
	if p.scrape[0] == 0 {
		// Between two readings lies one reading's cost: measure it
		// (the least of a few, idle) once.
		p.scrape = [2]uint64{math.MaxUint64, math.MaxUint64}
		h0, err := p.readHeap()
		if err != nil {
			return sidecarHeap{}, err
		}
		for range 5 {
			h1, err := p.readHeap()
			if err != nil {
				return sidecarHeap{}, err
			}
			p.scrape = [2]uint64{min(p.scrape[0], h1.mallocs-h0.mallocs), min(p.scrape[1], h1.bytes-h0.bytes)}
			h0 = h1
		}
		p.seen = 0
	}
	h, err := p.readHeap()
	p.seen++
	h.mallocs -= p.seen * p.scrape[0]
	h.bytes -= p.seen * p.scrape[1]
	return h, err
}

func (p *sidecarProc) readHeap() (sidecarHeap, error) {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return sidecarHeap{}, err
	}
	defer resp.Body.Close()
	var v [3]float64
	var found [3]bool
	names := [3]string{"go_memstats_mallocs_total", "go_memstats_alloc_bytes_total", "go_memstats_heap_alloc_bytes"}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		k := slices.Index(names[:], name)
		if !ok || k < 0 {
			continue
		}
		if v[k], err = strconv.ParseFloat(val, 64); err != nil {
			return sidecarHeap{}, fmt.Errorf("sidecar /metrics: %s: %w", name, err)
		}
		found[k] = true
	}
	if err := sc.Err(); err != nil {
		return sidecarHeap{}, err
	}
	for k, ok := range found {
		if !ok {
			return sidecarHeap{}, fmt.Errorf("sidecar /metrics: no %s", names[k])
		}
	}
	return sidecarHeap{mallocs: uint64(v[0]), bytes: uint64(v[1]), inUse: uint64(v[2])}, nil
}

// WriteProxyTable prints the rows: for each rate, each path's latency,
// what each proxy adds to the provider called directly, the CPU it
// spends per request, and what a sidecar allocates per request.
func WriteProxyTable(w io.Writer, cfg ProxyConfig, rows []ProxyRow) {
	cfg = cfg.withDefaults()
	where := "each proxy its own process"
	if cfg.ProfileDir != "" {
		where = "each proxy its own process, the sidecar profiled"
	}
	fmt.Fprintf(w, "Proxy: the fake provider direct, through nginx (proxy_pass, keepalive), through Go's bare reverse proxy (net/http) and through the fusebox sidecar (%s); open loop, %s per path and rate in %d turns\n\n",
		where, cfg.Duration, cfg.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate\tpath\tp50\tp99\tadded p50\tadded p99\tCPU/req\tallocs/req\tKB/req\theap MB\terrors\tlate\t")
	for _, r := range rows {
		for i, p := range r.Paths {
			added, cost := "\t", "\t\t\t"
			if i > 0 {
				added = us(p.Added[0]) + "\t" + us(p.Added[1])
				cost = us(p.CPUPerReq) + "\t\t\t"
			}
			if p.AllocsPerReq > 0 {
				cost = fmt.Sprintf("%s\t%.0f\t%.1f\t%.1f", us(p.CPUPerReq), p.AllocsPerReq, p.BytesPerReq/1024, p.HeapMB)
			}
			fmt.Fprintf(tw, "%d/s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", r.Rate, p.Name, us(p.P50), us(p.P99), added, cost, p.Errors, p.Late)
		}
	}
	_ = tw.Flush()
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }
