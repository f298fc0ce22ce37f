package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/statestore"
)

// FleetConfig shapes a fleet run: N agents in this process, each calling
// its breakers at a fixed rate, against one redis-server and one
// coordinator process.
type FleetConfig struct {
	// RedisAddr is a running redis-server (host:port) the run may use.
	RedisAddr string
	// Agents are the fleet sizes to measure, one row each.
	Agents []int
	// Breakers per agent. Default 3.
	Breakers int
	// Rate is calls per second per agent, spread over its breakers.
	// Default 50.
	Rate int
	// Steady is how long successes are measured per row. Default 10s.
	Steady time.Duration
	// Trips is how many trips propagation is measured over. Default 20.
	Trips int
	// Outages is how many real outages (the agents' own calls to
	// provider-0 fail until it trips) are measured. Default 10.
	Outages int
	// Progress receives a line per phase; nil discards.
	Progress io.Writer
}

// FleetRow is one fleet size's measurements.
type FleetRow struct {
	Agents          int
	CallsPerSec     float64
	RedisCmdsPerSec float64
	ScriptsPerSec   float64
	RedisCPU        float64 // share of one core
	CoordinatorCPU  float64 // share of one core
	PropagationP50  time.Duration
	PropagationP99  time.Duration
	CmdsPerUserCall float64
	AgentsDegraded  int
	// The real outages: calls that reached the failing provider (p50 and
	// the most of any outage; the breaker's threshold is Threshold), and
	// the time from the first failed call, and from the Threshold-th (the
	// earliest the fleet could trip), until every agent denied.
	OutageCallsP50, OutageCallsMax int64
	OutageTripP50, OutageTripP99   time.Duration
	OutageNthP50, OutageNthP99     time.Duration
	Threshold                      int
}

func buildCoordinator(dir string) (string, error) {
	bin := filepath.Join(dir, "coordinator")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/fusebox-io/fusebox/cmd/coordinator").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the coordinator: %v: %s", err, out)
	}
	return bin, nil
}

func startCoordinator(ctx context.Context, bin, redisURL, prefix, token, config string) (*proc, error) {
	cfgPath := filepath.Join(filepath.Dir(bin), prefix+".yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "FUSEBOX_REDIS_URL="+redisURL, "FUSEBOX_LISTEN=127.0.0.1:0", "FUSEBOX_PREFIX="+prefix,
		"FUSEBOX_TOKENS=fleet:agent:"+token+",ops:admin:"+token+"-admin", "FUSEBOX_CONFIG="+cfgPath,
		"FUSEBOX_LOG_FORMAT=json", "FUSEBOX_LOG_LEVEL=info", "FUSEBOX_ID=fleet-coordinator")
	return startProc(cmd, "api")
}

// redisStats are the counters a row needs from INFO.
type redisStats struct {
	cmds, scripts int64
	cpu           time.Duration
}

func readRedis(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	info, err := rdb.Info(ctx, "stats", "commandstats", "cpu").Result()
	if err != nil {
		return redisStats{}, err
	}
	var s redisStats
	var cpuSec float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "total_commands_processed":
			s.cmds, _ = strconv.ParseInt(v, 10, 64)
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			cpuSec += f
		case k == "cmdstat_evalsha" || k == "cmdstat_eval":
			for _, kv := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(kv, "calls="); ok {
					c, _ := strconv.ParseInt(n, 10, 64)
					s.scripts += c
				}
			}
		}
	}
	s.cpu = time.Duration(cpuSec * float64(time.Second))
	return s, nil
}

// RunFleet measures each fleet size in turn.
func RunFleet(ctx context.Context, cfg FleetConfig) ([]FleetRow, error) {
	if cfg.Breakers <= 0 {
		cfg.Breakers = 3
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 50
	}
	if cfg.Steady <= 0 {
		cfg.Steady = 10 * time.Second
	}
	if cfg.Trips <= 0 {
		cfg.Trips = 20
	}
	if cfg.Outages <= 0 {
		cfg.Outages = 10
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "fusebox-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := buildCoordinator(dir)
	if err != nil {
		return nil, err
	}
	var rows []FleetRow
	for i, n := range cfg.Agents {
		row, err := runFleetRow(ctx, cfg, bin, n, fmt.Sprintf("fleet%d", i))
		if err != nil {
			return rows, fmt.Errorf("%d agents: %w", n, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func runFleetRow(parent context.Context, cfg FleetConfig, bin string, n int, prefix string) (FleetRow, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	row := FleetRow{Agents: n}
	redisURL := "redis://" + cfg.RedisAddr
	token := "fleet-token-0123456789abcdef"
	names := make([]string, cfg.Breakers)
	for i := range names {
		names[i] = fmt.Sprintf("provider-%d", i)
	}
	coord, err := startCoordinator(ctx, bin, redisURL, prefix, token, "defaults:\n  open_timeout: 10m\n  max_open_timeout: 10m\n")
	if err != nil {
		return row, err
	}
	defer coord.stop()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	defer rdb.Close()

	fmt.Fprintf(cfg.Progress, "fleet: %d agents × %d breakers, %d calls/s each\n", n, cfg.Breakers, cfg.Rate)
	agents := make([]*agentlib.Agent, n)
	breakers := make([][]*agentlib.Breaker, n)
	shared := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 64})
	defer shared.Close()
	for i := range n {
		// Each agent has its own client, as separate replicas would: its
		// own pub/sub connection and pool.
		a, err := agentlib.New(agentlib.Config{CoordinatorURL: coord.url, RedisURL: redisURL, Prefix: prefix, Token: token,
			AgentID: fmt.Sprintf("fleet-%d", i)})
		if err != nil {
			return row, err
		}
		defer a.Close()
		agents[i] = a
		for _, name := range names {
			b, err := a.Breaker(name)
			if err != nil {
				return row, err
			}
			breakers[i] = append(breakers[i], b)
		}
	}
	// The calls: every agent calls its breakers in turn, cfg.Rate a
	// second, driven by a few goroutines: successes, except provider-0's
	// calls while failing is set (the outage). Calls are instant: what
	// is in flight when the breaker trips is what the agents call before
	// their mirrors deny.
	var calls, failed atomic.Int64
	var failing atomic.Bool
	var firstFail atomic.Int64 // unix ns of the outage's first failed call
	var nthFail atomic.Int64   // unix ns of its threshold-th (the earliest a trip can be)
	threshold := int64(statestore.DefaultPolicy().ConsecutiveFailures)
	errOutage := errors.New("HTTP 503: the provider is down")
	drive := func() (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		drivers := min(n, 16)
		every := time.Second / time.Duration(cfg.Rate)
		for d := range drivers {
			wg.Go(func() {
				t := time.NewTicker(every)
				defer t.Stop()
				k := 0
				for {
					select {
					case <-done:
						return
					case <-ctx.Done():
						return
					case <-t.C:
					}
					for i := d; i < n; i += drivers {
						// Staggered: in each round a third of the agents
						// call each breaker.
						j := (k + i) % cfg.Breakers
						allow, err := breakers[i][j].Allow()
						if err != nil {
							continue
						}
						calls.Add(1)
						if j == 0 && failing.Load() {
							switch failed.Add(1) {
							case 1:
								firstFail.Store(time.Now().UnixNano())
							case threshold:
								nthFail.Store(time.Now().UnixNano())
							}
							allow(agentlib.Failure(errOutage))
							continue
						}
						allow(agentlib.Success())
					}
					k++
				}
			})
		}
		return func() { close(done); wg.Wait() }
	}
	stopDriving := drive()
	// Warm up, then measure the steady state.
	if !sleepCtx(ctx, 3*time.Second) {
		return row, ctx.Err()
	}
	r0, err := readRedis(ctx, rdb)
	if err != nil {
		return row, err
	}
	c0, _ := coord.cpu()
	calls0 := calls.Load()
	start := time.Now()
	if !sleepCtx(ctx, cfg.Steady) {
		return row, ctx.Err()
	}
	el := time.Since(start)
	r1, err := readRedis(ctx, rdb)
	if err != nil {
		return row, err
	}
	c1, _ := coord.cpu()
	calls1 := calls.Load()
	stopDriving()
	sec := el.Seconds()
	row.CallsPerSec = float64(calls1-calls0) / sec
	row.RedisCmdsPerSec = float64(r1.cmds-r0.cmds) / sec
	row.ScriptsPerSec = float64(r1.scripts-r0.scripts) / sec
	row.RedisCPU = (r1.cpu - r0.cpu).Seconds() / sec
	row.CoordinatorCPU = (c1 - c0).Seconds() / sec
	if row.CallsPerSec > 0 {
		row.CmdsPerUserCall = row.RedisCmdsPerSec / row.CallsPerSec
	}
	for _, a := range agents {
		if a.Degraded() {
			row.AgentsDegraded++
		}
	}

	// Propagation: a report trips a breaker; how long until every agent
	// denies (over pub/sub).
	store, err := statestore.New(shared, statestore.Options{Prefix: prefix})
	if err != nil {
		return row, err
	}
	fmt.Fprintf(cfg.Progress, "fleet: %d agents: %d trips\n", n, cfg.Trips)
	body := []byte(`{"agent":"tripper","breakers":[{"name":"provider-0","fail":5,"trailing_fail":5,"last_error":"503"}]}`)
	var samples []time.Duration
	all := func(st statestore.State) bool {
		for i := range n {
			if breakers[i][0].State().State != st {
				return false
			}
		}
		return true
	}
	p := statestore.DefaultPolicy()
	p.OpenTimeout, p.MaxOpenTimeout = 10*time.Minute, 10*time.Minute
	// reset closes provider-0 and waits until every agent has it closed.
	reset := func() error {
		if _, err := store.Reset(ctx, "provider-0", p, "fleet", "next round"); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for !all(statestore.StateClosed) {
			if time.Now().After(deadline) {
				return errors.New("agents never all saw the reset")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	for range cfg.Trips {
		if err := reset(); err != nil {
			return row, err
		}
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, coord.url+"/v1/reports", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return row, err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // so the next report reuses the connection
		resp.Body.Close()
		for !all(statestore.StateOpen) {
			if time.Since(t0) > 10*time.Second {
				return row, errors.New("agents never all saw the trip")
			}
			time.Sleep(100 * time.Microsecond)
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	row.PropagationP50 = samples[len(samples)/2]
	row.PropagationP99 = samples[min(len(samples)-1, len(samples)*99/100)]

	// The outage, for real: the fleet calls as before, and provider-0's
	// calls start failing on every agent. The agents report their own
	// failures; counted: the calls that reached the failing provider,
	// and the time from the first failure until every agent denies.
	fmt.Fprintf(cfg.Progress, "fleet: %d agents: %d outages\n", n, cfg.Outages)
	stopDriving = drive()
	defer stopDriving()
	var failedCalls []int64
	var toTrip, fromNth []time.Duration
	for range cfg.Outages {
		if err := reset(); err != nil {
			return row, err
		}
		failed.Store(0)
		firstFail.Store(0)
		nthFail.Store(0)
		failing.Store(true)
		deadline := time.Now().Add(10 * time.Second)
		for !all(statestore.StateOpen) {
			if time.Now().After(deadline) {
				return row, errors.New("the agents' failures never tripped the breaker")
			}
			time.Sleep(100 * time.Microsecond)
		}
		tripped := time.Now()
		failing.Store(false)
		failedCalls = append(failedCalls, failed.Load())
		toTrip = append(toTrip, tripped.Sub(time.Unix(0, firstFail.Load())))
		fromNth = append(fromNth, tripped.Sub(time.Unix(0, nthFail.Load())))
	}
	slices.Sort(failedCalls)
	slices.Sort(toTrip)
	row.OutageCallsP50 = failedCalls[len(failedCalls)/2]
	row.OutageCallsMax = failedCalls[len(failedCalls)-1]
	row.OutageTripP50 = toTrip[len(toTrip)/2]
	row.OutageTripP99 = toTrip[min(len(toTrip)-1, len(toTrip)*99/100)]
	slices.Sort(fromNth)
	row.OutageNthP50 = fromNth[len(fromNth)/2]
	row.OutageNthP99 = fromNth[min(len(fromNth)-1, len(fromNth)*99/100)]
	row.Threshold = p.ConsecutiveFailures
	return row, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// WriteFleetTable prints the rows.
func WriteFleetTable(w io.Writer, cfg FleetConfig, rows []FleetRow) {
	fmt.Fprintf(w, "Fleet: agents in one process, %d breakers each, %d calls/s per agent (successes; then outages of provider-0), one redis-server, one coordinator process\n\n",
		max(cfg.Breakers, 3), max(cfg.Rate, 50))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agents\tcalls/s\tRedis commands/s\tper user call\tscript calls/s\tRedis CPU\tcoordinator CPU\ttrip propagation p50 / p99\toutage: calls to the failing provider p50 / max (threshold)\tfirst failure → all deny p50 / p99\tthreshold-th failure → all deny p50 / p99\tdegraded\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.4f\t%.0f\t%.1f%%\t%.1f%%\t%s / %s\t%d / %d (%d)\t%s / %s\t%s / %s\t%d\t\n", r.Agents, r.CallsPerSec, r.RedisCmdsPerSec, r.CmdsPerUserCall,
			r.ScriptsPerSec, 100*r.RedisCPU, 100*r.CoordinatorCPU, r.PropagationP50.Round(10*time.Microsecond), r.PropagationP99.Round(10*time.Microsecond),
			r.OutageCallsP50, r.OutageCallsMax, r.Threshold, r.OutageTripP50.Round(10*time.Microsecond), r.OutageTripP99.Round(10*time.Microsecond),
			r.OutageNthP50.Round(10*time.Microsecond), r.OutageNthP99.Round(10*time.Microsecond), r.AgentsDegraded)
	}
	_ = tw.Flush()
}
