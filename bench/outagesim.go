package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/sony/gobreaker/v2"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

// The seed's scenario, in its own units; SimConfig.Scale divides every
// duration alike.
const (
	simWarmup      = 60 * time.Second
	simOutage      = 5 * time.Minute
	simAfter       = 2 * time.Minute
	simPerMinute   = 100
	simTimeout     = 30 * time.Second // provider timeout
	simDeadline    = 60 * time.Second // a user gives up after this
	simAttempts    = 3                // the baseline's tenacity: 3 attempts...
	simBackoffMin  = 2 * time.Second  // ...with exponential backoff from 2 s...
	simBackoffMax  = 10 * time.Second // ...to 10 s
	simOpenTimeout = 60 * time.Second // the per-replica breaker's reset timeout, as the seed
)

// fusebox runs with the shipped examples' values (examples/fusebox.yaml,
// examples/sidecar.yaml; TestSim_UsesTheShippedDefaults keeps them equal).
const (
	simHangAfter      = 2 * time.Second
	simCanaryEvery    = time.Second
	simCanaryMax      = 5 * time.Second
	simCanaryTimeout  = 3 * time.Second
	simProbeTimeout   = 30 * time.Second
	simConnect        = 2 * time.Second
	simFirstByte      = 30 * time.Second
	simFirstToken     = 10 * time.Second
	simStall          = 10 * time.Second
	simTotal          = 120 * time.Second
	simHedgeMin       = 2 * time.Second
	simHedgeMax       = 8 * time.Second
	simRetryBase      = 100 * time.Millisecond
	simRetryMax       = 2 * time.Second
	simHangResolution = 100 * time.Millisecond
)

// Modes the simulation compares.
const (
	ModeNone      = "no-breaker"
	ModeGobreaker = "gobreaker-per-replica"
	ModeFusebox   = "fusebox"
)

// SimConfig shapes a run of the outage simulation.
type SimConfig struct {
	// Scale divides every duration (8: the 8-minute scenario in 1 minute).
	Scale float64
	// Replicas of the app, each with its own breaker or sidecar. Default 3.
	Replicas int
	// Modes to run, in order. Default all three.
	Modes []string
	// RedisURL for fusebox mode; empty runs an embedded server.
	RedisURL string
	// Progress receives a line per phase; nil discards.
	Progress io.Writer
}

// SimResult is one mode's row of the seed's table.
type SimResult struct {
	Mode       string
	Requests   int
	UserErrors int
	// FailingProviderCalls are the users' calls that reached the primary
	// while it hung; CanaryCalls the canaries (cheap, no user waits).
	FailingProviderCalls int64
	CanaryCalls          int64
	MeanLatency          time.Duration
	P99Latency           time.Duration
	// Outage* are the users' response times for requests that began
	// during the outage.
	OutageMean, OutageP99, OutageMax time.Duration
	// Trip is the time from the hang to the cluster's trip (fusebox
	// only; -1 elsewhere).
	Trip           time.Duration
	PeakInFlight   int64
	PeakGoroutines int
	FirstBack      time.Duration // recovery until the first request served by the primary
	AllBack        time.Duration // ... until every replica was served by it
}

// sim is one run's shared state.
type sim struct {
	cfg    SimConfig
	fp     *fakeprovider.Server
	fpURL  string
	client *http.Client
	// tripped returns when the cluster tripped (fusebox mode).
	tripped func() time.Time
}

func (s *sim) d(x time.Duration) time.Duration { return time.Duration(float64(x) / s.cfg.Scale) }
func (s *sim) real(x time.Duration) time.Duration {
	return time.Duration(float64(x) * s.cfg.Scale)
}

// RunSim runs the seed's outage scenario in each mode and returns one row
// per mode.
func RunSim(ctx context.Context, cfg SimConfig) ([]SimResult, error) {
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = []string{ModeNone, ModeGobreaker, ModeFusebox}
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	s := &sim{cfg: cfg, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	var out []SimResult
	for _, m := range cfg.Modes {
		r, err := s.run(ctx, m)
		if err != nil {
			return out, fmt.Errorf("%s: %w", m, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// serve runs h on a loopback port until ctx ends.
func serve(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	})
	return "http://" + ln.Addr().String(), nil
}

// app is one replica: it answers a user request, or fails.
type app func(ctx context.Context) (provider string, err error)

func (s *sim) run(parent context.Context, mode string) (SimResult, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s.fp = fakeprovider.New()
	defer s.fp.Close()
	var err error
	if s.fpURL, err = serve(ctx, s.fp); err != nil {
		return SimResult{}, err
	}
	s.tripped = nil
	var apps []app
	switch mode {
	case ModeNone:
		for range s.cfg.Replicas {
			apps = append(apps, s.baseline(nil))
		}
	case ModeGobreaker:
		for i := range s.cfg.Replicas {
			cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
				Name: fmt.Sprintf("replica-%d", i), MaxRequests: 1, Timeout: s.d(simOpenTimeout),
				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
			})
			apps = append(apps, s.baseline(cb))
		}
	case ModeFusebox:
		if apps, err = s.fusebox(ctx); err != nil {
			return SimResult{}, err
		}
	default:
		return SimResult{}, fmt.Errorf("unknown mode %q: want %s, %s or %s", mode, ModeNone, ModeGobreaker, ModeFusebox)
	}
	return s.load(ctx, mode, apps)
}

// post sends one chat completion to an OpenAI-format endpoint.
func (s *sim) post(ctx context.Context, url string, timeout time.Duration, headers ...string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the ticket."}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

var errUpstream = errors.New("upstream error")

// baseline is the seed's app: the primary with a 30 s timeout, 3 attempts
// with exponential backoff (2-10 s), then the fallback; with cb set, each
// attempt goes through a per-replica gobreaker and an open breaker goes
// straight to the fallback. The app keeps working after its user gave up,
// as a handler that does not watch its client would.
func (s *sim) baseline(cb *gobreaker.CircuitBreaker[struct{}]) app {
	fpURL := s.fpURL // this mode's: its goroutines may outlive it
	callPrimary := func(ctx context.Context) error {
		resp, err := s.post(ctx, fpURL+"/openai/v1/chat/completions", s.d(simTimeout), "Authorization", "Bearer sk-sim")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("%w: %d", errUpstream, resp.StatusCode)
		}
		return nil
	}
	return func(ctx context.Context) (string, error) {
		work := context.WithoutCancel(ctx)
		for attempt := 1; attempt <= simAttempts; attempt++ {
			var err error
			if cb != nil {
				_, err = cb.Execute(func() (struct{}, error) { return struct{}{}, callPrimary(work) })
				if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
					break
				}
			} else {
				err = callPrimary(work)
			}
			if err == nil {
				return "openai", nil
			}
			if attempt < simAttempts {
				wait := min(simBackoffMin*time.Duration(1<<(attempt-1)), simBackoffMax)
				time.Sleep(s.d(wait) + time.Duration(mrand.Int64N(int64(s.d(time.Second))+1)))
			}
		}
		resp, err := s.post(work, fpURL+"/ollama/v1/chat/completions", s.d(simTimeout))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("%w: fallback %d", errUpstream, resp.StatusCode)
		}
		return "ollama", nil
	}
}

// fusebox starts a coordinator on Redis and one sidecar per replica; each
// app calls its sidecar.
func (s *sim) fusebox(ctx context.Context) ([]app, error) {
	redisURL := s.cfg.RedisURL
	if redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, mr.Close)
		redisURL = "redis://" + mr.Addr()
	}
	rdb, err := statestore.Dial(redisURL)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { _ = rdb.Close() })
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	agentToken := "sim-" + hex.EncodeToString(tok)
	prefix := "sim" + hex.EncodeToString(tok[:4])
	store, err := statestore.New(rdb, statestore.Options{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
defaults:
  consecutive_failures: 5
  hang_after: %s
  canary_interval: %s
  canary_max_interval: %s
  probe_timeout: %s
breakers:
  openai:
    canary:
      kind: openai
      url: %s/openai/v1
      model: gpt-4o-mini
      timeout: %s
`, s.d(simHangAfter), s.d(simCanaryEvery), s.d(simCanaryMax), s.d(simProbeTimeout), s.fpURL, s.d(simCanaryTimeout))))
	if err != nil {
		return nil, err
	}
	canaries, err := probe.NewAll(cfg.Canaries, func(string) string { return "" }, nil)
	if err != nil {
		return nil, err
	}
	coord, err := coordinator.New(coordinator.Config{ID: "sim-coordinator", TickInterval: max(s.d(100*time.Millisecond), 5*time.Millisecond), Canaries: canaries,
		ProbeLockMargin: s.d(2 * time.Second)}, store, cfg)
	if err != nil {
		return nil, err
	}
	go func() { _ = coord.Run(ctx) }()
	coordURL, err := serve(ctx, api.New(api.Config{Tokens: []config.Token{{Name: "sim", Role: config.RoleAgent, Secret: agentToken}}}, coord))
	if err != nil {
		return nil, err
	}
	scCfg, err := sidecar.ParseConfig([]byte(fmt.Sprintf(`
providers:
  openai:
    kind: openai
    base_url: %[1]s/openai/v1
    api_key_env: SIM_KEY
    timeouts: {connect: %[2]s, first_byte: %[3]s, first_token: %[4]s, stall: %[5]s, total: %[6]s}
  ollama:
    kind: ollama
    base_url: %[1]s/ollama
    models: {"*": "llama3.2:1b"}
    timeouts: {connect: %[2]s, first_byte: %[3]s, first_token: %[4]s, stall: %[5]s, total: %[6]s}
routes:
  - name: chat
    chain: [openai, ollama]
    hedge: {after: p95, min: %[7]s, max: %[8]s}
retry: {attempts: 3, base: %[9]s, max: %[10]s}
`, s.fpURL, s.d(simConnect), s.d(simFirstByte), s.d(simFirstToken), s.d(simStall), s.d(simTotal),
		s.d(simHedgeMin), s.d(simHedgeMax), s.d(simRetryBase), s.d(simRetryMax))), func(string) string { return "sk-sim" })
	if err != nil {
		return nil, err
	}
	s.tripped = func() time.Time {
		evs, err := store.Events(context.Background(), "openai", 1000, "")
		if err != nil {
			return time.Time{}
		}
		var first time.Time
		for _, e := range evs { // newest first
			if e.Event == "trip" {
				first = e.Time
			}
		}
		return first
	}
	var apps []app
	for i := range s.cfg.Replicas {
		a, err := agentlib.New(agentlib.Config{CoordinatorURL: coordURL, Redis: rdb, Prefix: prefix, Token: agentToken,
			AgentID: fmt.Sprintf("sim-sidecar-%d", i), ResyncInterval: max(s.d(time.Second), 50*time.Millisecond),
			HangResolution: max(s.d(simHangResolution), 2*time.Millisecond)})
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { _ = a.Close() })
		sc, err := sidecar.New(sidecar.Options{Config: scCfg, Agent: a})
		if err != nil {
			return nil, err
		}
		url, err := serve(ctx, sc)
		if err != nil {
			return nil, err
		}
		apps = append(apps, func(ctx context.Context) (string, error) {
			resp, err := s.post(ctx, url+"/v1/chat/completions", s.d(simDeadline))
			if err != nil {
				return "", err
			}
			if resp.StatusCode != 200 {
				return "", fmt.Errorf("%w: %d", errUpstream, resp.StatusCode)
			}
			return resp.Header.Get(sidecar.HeaderProvider), nil
		})
	}
	return apps, nil
}

// load sends the seed's traffic (100 requests a minute, spread over the
// replicas) through warm-up, the outage and the recovery, and measures.
func (s *sim) load(ctx context.Context, mode string, apps []app) (SimResult, error) {
	res := SimResult{Mode: mode}
	total := simWarmup + simOutage + simAfter
	interval := s.d(time.Minute / simPerMinute)
	n := int(total / (time.Minute / simPerMinute))
	var (
		mu         sync.Mutex
		latencies  []time.Duration
		during     []time.Duration // requests begun during the outage
		errs       int
		inFlight   atomic.Int64
		peakFlight atomic.Int64
		firstBack  = make([]time.Time, len(apps))
		healedAt   atomic.Int64
		wg         sync.WaitGroup
	)
	baseG := runtime.NumGoroutine()
	peakG := atomic.Int64{}
	sampler, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampler.Done():
				return
			case <-t.C:
				if g := int64(runtime.NumGoroutine() - baseG); g > peakG.Load() {
					peakG.Store(g)
				}
			}
		}
	}()
	start := time.Now()
	outageAt, healAt := s.d(simWarmup), s.d(simWarmup+simOutage)
	var callsAtOutage, callsAtHeal, canariesAtOutage, canariesAtHeal int64
	var outageBegan time.Time
	phase := 0
	fmt.Fprintf(s.cfg.Progress, "%s: %d requests over %s (scale %g)\n", mode, n, s.d(total).Round(time.Second), s.cfg.Scale)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		el := time.Since(start)
		if phase == 0 && el >= outageAt {
			phase = 1
			callsAtOutage, canariesAtOutage = s.fp.Calls("openai"), s.fp.CanaryCalls("openai")
			outageBegan = time.Now()
			if err := s.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultHang}); err != nil {
				return res, err
			}
			fmt.Fprintf(s.cfg.Progress, "%s: outage begins: the primary hangs\n", mode)
		}
		if phase == 1 && el >= healAt {
			phase = 2
			s.fp.ClearFault("openai")
			callsAtHeal, canariesAtHeal = s.fp.Calls("openai"), s.fp.CanaryCalls("openai")
			healedAt.Store(time.Now().UnixNano())
			fmt.Fprintf(s.cfg.Progress, "%s: the primary heals\n", mode)
		}
		replica := i % len(apps)
		inOutage := phase == 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := inFlight.Add(1)
			for p := peakFlight.Load(); f > p && !peakFlight.CompareAndSwap(p, f); p = peakFlight.Load() {
			}
			defer inFlight.Add(-1)
			rctx, cancel := context.WithTimeout(ctx, s.d(simDeadline))
			defer cancel()
			t0 := time.Now()
			type out struct {
				p   string
				err error
			}
			ch := make(chan out, 1)
			go func() { p, err := apps[replica](rctx); ch <- out{p, err} }()
			var o out
			select {
			case o = <-ch:
			case <-rctx.Done():
				o = out{err: rctx.Err()} // the user gave up; the app may go on
			}
			took := min(time.Since(t0), s.d(simDeadline))
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, took)
			if inOutage {
				during = append(during, took)
			}
			if o.err != nil {
				errs++
				return
			}
			if h := healedAt.Load(); h != 0 && o.p == "openai" && firstBack[replica].IsZero() && t0.UnixNano() >= h {
				firstBack[replica] = time.Now()
			}
		}()
	}
	wg.Wait()
	stopSampler()
	if phase < 2 {
		return res, errors.New("the run ended before the primary healed")
	}
	res.Requests = n
	res.UserErrors = errs
	res.CanaryCalls = canariesAtHeal - canariesAtOutage
	res.FailingProviderCalls = callsAtHeal - callsAtOutage - res.CanaryCalls
	res.MeanLatency, res.P99Latency, _ = s.stats(latencies)
	res.OutageMean, res.OutageP99, res.OutageMax = s.stats(during)
	res.Trip = -1
	if s.tripped != nil {
		if at := s.tripped(); !at.IsZero() {
			res.Trip = s.real(at.Sub(outageBegan))
		}
	}
	res.PeakInFlight = peakFlight.Load()
	res.PeakGoroutines = int(peakG.Load())
	healed := time.Unix(0, healedAt.Load())
	var first, last time.Time
	for _, t := range firstBack {
		if t.IsZero() {
			last = time.Time{}
			break
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	if !first.IsZero() {
		res.FirstBack = s.real(first.Sub(healed))
	} else {
		res.FirstBack = -1
	}
	if !last.IsZero() {
		res.AllBack = s.real(last.Sub(healed))
	} else {
		res.AllBack = -1
	}
	return res, nil
}

// stats are the mean, p99 and max of ds, in real-scenario units.
func (s *sim) stats(ds []time.Duration) (mean, p99, most time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	var sum time.Duration
	for _, l := range ds {
		sum += l
	}
	slices.Sort(ds)
	return s.real(sum / time.Duration(len(ds))), s.real(ds[int(math.Min(float64(len(ds)-1), float64(len(ds))*0.99))]), s.real(ds[len(ds)-1])
}

// WriteTable prints the rows as the seed's table.
func WriteTable(w io.Writer, cfg SimConfig, rows []SimResult) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3 // RunSim's default
	}
	fmt.Fprintf(w, "Outage simulation: %d replicas, %d requests/minute, %s warm-up, %s outage (primary hangs; %s timeouts), %s after; time scale %g (durations below in real-scenario units)\n\n",
		cfg.Replicas, simPerMinute, simWarmup, simOutage, simTimeout, simAfter, cfg.Scale)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\trequests\tuser-visible errors\tcalls to failing provider (canaries)\tmean response\tp99 response\tduring the outage: mean / p99 / max\ttrip after\tpeak in flight\tpeak goroutines\tfirst back on primary\tall back on primary\t")
	dur := func(d time.Duration) string {
		switch {
		case d < 0:
			return "never"
		case d < 10*time.Second:
			return d.Round(10 * time.Millisecond).String()
		}
		return d.Round(100 * time.Millisecond).String()
	}
	trip := func(d time.Duration) string {
		if d < 0 {
			return "-"
		}
		return dur(d)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d (%.1f%%)\t%d (%d)\t%s\t%s\t%s / %s / %s\t%s\t%d\t%d\t%s\t%s\t\n", r.Mode, r.Requests, r.UserErrors,
			100*float64(r.UserErrors)/float64(max(r.Requests, 1)), r.FailingProviderCalls, r.CanaryCalls, dur(r.MeanLatency), dur(r.P99Latency),
			dur(r.OutageMean), dur(r.OutageP99), dur(r.OutageMax), trip(r.Trip),
			r.PeakInFlight, r.PeakGoroutines, dur(r.FirstBack), dur(r.AllBack))
	}
	// The seed article's own figures for its scenario, beside ours.
	fmt.Fprintln(tw, "seed article: no breaker\t\t~500\t~1000\t> 30s\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "seed article: breaker\t\t< 50\t~5\t< 2s\t\t\t\t\t\t\t\t")
	_ = tw.Flush()
}
