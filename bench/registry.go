package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/statestore"
)

// RegistryConfig shapes a registry run: one coordinator process with N
// registered breakers (each with state, as agents' reports leave them),
// a few of them open, and no agent: what the coordinator costs while
// nothing happens, and what a page of GET /v1/breakers and a /metrics
// scrape cost, per registry size.
type RegistryConfig struct {
	// RedisAddr is a running redis-server (host:port) the run may use.
	RedisAddr string
	// Sizes are the registry sizes to measure, one row each.
	Sizes []int
	// Open is how many of the breakers are open (the timer moves them on
	// every tick), the same at every size. Default 10.
	Open int
	// Steady is how long the idle coordinator is measured per row,
	// from just after a registry refresh (every 5 s). Default 12.5s: two
	// refreshes.
	Steady time.Duration
	// Requests is how many pages and how many scrapes are timed per row
	// (the coordinator's CPU is read in 10 ms steps). Default 50.
	Requests int
	// Progress receives a line per phase; nil discards.
	Progress io.Writer
}

// RegistryRow is one registry size's measurements.
type RegistryRow struct {
	Breakers int
	// Tick and Refresh are the coordinator's own means over the steady
	// window (fusebox_loop_tick_seconds, fusebox_registry_refresh_seconds):
	// a tick moves the due breakers on; a refresh also reads the
	// registry, checks breakers' states and writes the configured
	// policies.
	Tick, Refresh time.Duration
	Ticks         int64
	Refreshes     int64
	// Over the steady window, per second: the coordinator process's CPU
	// (share of one core), Redis commands, Redis CPU.
	CoordinatorCPU  float64
	RedisCmdsPerSec float64
	RedisCPU        float64
	// A page of GET /v1/breakers (limit 100, from the middle of the
	// list) and a GET /metrics scrape: wall time p50, Redis commands and
	// coordinator CPU per request.
	PageP50, ScrapeP50     time.Duration
	PageCmds, ScrapeCmds   float64
	PageCPU, ScrapeCPU     time.Duration
	ScrapeBytes, PageBytes int
}

// RunRegistry measures each registry size in turn, each on its own key
// prefix.
func RunRegistry(ctx context.Context, cfg RegistryConfig) ([]RegistryRow, error) {
	if cfg.Open <= 0 {
		cfg.Open = 10
	}
	if cfg.Steady <= 0 {
		cfg.Steady = 12500 * time.Millisecond
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 50
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "fusebox-registry-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := buildCoordinator(dir)
	if err != nil {
		return nil, err
	}
	var rows []RegistryRow
	for i, n := range cfg.Sizes {
		row, err := runRegistryRow(ctx, cfg, bin, n, fmt.Sprintf("registry%d", i))
		if err != nil {
			return rows, fmt.Errorf("%d breakers: %w", n, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// registryConfig is the coordinator's config in the run: open breakers
// stay open through it.
const registryConfig = "defaults:\n  open_timeout: 10m\n  max_open_timeout: 10m\n"

func runRegistryRow(parent context.Context, cfg RegistryConfig, bin string, n int, prefix string) (RegistryRow, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	row := RegistryRow{Breakers: n}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 32})
	defer rdb.Close()
	fmt.Fprintf(cfg.Progress, "registry: %d breakers\n", n)
	names, err := seedRegistry(ctx, rdb, prefix, n, cfg.Open)
	if err != nil {
		return row, err
	}
	token := "registry-token-0123456789abcdef"
	coord, err := startCoordinator(ctx, bin, "redis://"+cfg.RedisAddr, prefix, token, registryConfig)
	if err != nil {
		return row, err
	}
	defer coord.stop()
	admin := token + "-admin"
	// Start right after a refresh (not the first, which reads
	// everything), so that every row's window holds two.
	hist, err := loopHistograms(ctx, coord.url, admin)
	if err != nil {
		return row, err
	}
	for deadline := time.Now().Add(30 * time.Second); hist.refreshes < 2; {
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return row, ctx.Err()
		}
		if time.Now().After(deadline) {
			return row, errors.New("the coordinator did not refresh its registry twice in 30s")
		}
		if hist, err = loopHistograms(ctx, coord.url, admin); err != nil {
			return row, err
		}
	}

	// The idle coordinator.
	r0, err := readRedis(ctx, rdb)
	if err != nil {
		return row, err
	}
	c0, _ := coord.cpu()
	start := time.Now()
	if !sleepCtx(ctx, cfg.Steady) {
		return row, ctx.Err()
	}
	el := time.Since(start).Seconds()
	r1, err := readRedis(ctx, rdb)
	if err != nil {
		return row, err
	}
	c1, _ := coord.cpu()
	after, err := loopHistograms(ctx, coord.url, admin)
	if err != nil {
		return row, err
	}
	row.CoordinatorCPU = (c1 - c0).Seconds() / el
	row.RedisCmdsPerSec = float64(r1.cmds-r0.cmds-1) / el
	row.RedisCPU = (r1.cpu - r0.cpu).Seconds() / el
	row.Ticks, row.Refreshes = after.ticks-hist.ticks, after.refreshes-hist.refreshes
	if row.Ticks > 0 {
		row.Tick = time.Duration((after.tickSum - hist.tickSum) / float64(row.Ticks) * float64(time.Second))
	}
	if row.Refreshes > 0 {
		row.Refresh = time.Duration((after.refreshSum - hist.refreshSum) / float64(row.Refreshes) * float64(time.Second))
	}

	// A page from the middle of the list, and a scrape.
	mid := names[len(names)/2]
	page := coord.url + "/v1/breakers?limit=100&cursor=" + mid
	if row.PageP50, row.PageCmds, row.PageCPU, row.PageBytes, err = timeRequests(ctx, rdb, coord, page, admin, cfg.Requests); err != nil {
		return row, err
	}
	if row.ScrapeP50, row.ScrapeCmds, row.ScrapeCPU, row.ScrapeBytes, err = timeRequests(ctx, rdb, coord, coord.url+"/metrics", admin, cfg.Requests); err != nil {
		return row, err
	}
	return row, nil
}

// seedRegistry registers n breakers, gives each a state as one agent's
// report of a success would, and trips open of them. It returns the
// names, sorted.
func seedRegistry(ctx context.Context, rdb *redis.Client, prefix string, n, open int) ([]string, error) {
	store, err := statestore.New(rdb, statestore.Options{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("provider-%05d", i)
	}
	for chunk := range slices.Chunk(names, 1000) {
		if err := store.Register(ctx, chunk...); err != nil {
			return nil, err
		}
	}
	p := statestore.DefaultPolicy()
	p.OpenTimeout, p.MaxOpenTimeout = 10*time.Minute, 10*time.Minute
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				b := statestore.Batch{OK: 1}
				if i%max(n/open, 1) == 0 {
					b = statestore.Batch{Fail: 5, TrailingFail: 5, LastError: "503"}
				}
				if _, err := store.Report(ctx, names[i], p, "seed", b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range names {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return nil, err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return names, nil
}

// loopStats are the coordinator's loop histograms' sums and counts.
type loopStats struct {
	tickSum, refreshSum float64
	ticks, refreshes    int64
}

func loopHistograms(ctx context.Context, base, token string) (loopStats, error) {
	var s loopStats
	body, err := get(ctx, base+"/metrics", token)
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch k {
		case "fusebox_loop_tick_seconds_sum":
			s.tickSum = f
		case "fusebox_loop_tick_seconds_count":
			s.ticks = int64(f)
		case "fusebox_registry_refresh_seconds_sum":
			s.refreshSum = f
		case "fusebox_registry_refresh_seconds_count":
			s.refreshes = int64(f)
		}
	}
	return s, sc.Err()
}

func get(ctx context.Context, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body, nil
}

// timeRequests GETs url k times, one at a time: the median wall time, and
// per request the Redis commands and the coordinator's CPU.
func timeRequests(ctx context.Context, rdb *redis.Client, coord *proc, url, token string, k int) (p50 time.Duration, cmds float64, cpu time.Duration, size int, err error) {
	r0, err := readRedis(ctx, rdb)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	c0, _ := coord.cpu()
	took := make([]time.Duration, k)
	for i := range k {
		t0 := time.Now()
		body, err := get(ctx, url, token)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		took[i], size = time.Since(t0), len(body)
	}
	c1, _ := coord.cpu()
	r1, err := readRedis(ctx, rdb)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	slices.Sort(took)
	// Less the first INFO, counted in the second's total; the idle
	// coordinator's own commands in between are few and counted too.
	return took[k/2], float64(r1.cmds-r0.cmds-1) / float64(k), (c1 - c0) / time.Duration(k), size, nil
}

// WriteRegistryTable prints the rows.
func WriteRegistryTable(w io.Writer, cfg RegistryConfig, rows []RegistryRow) {
	fmt.Fprintf(w, "Registry: one coordinator process, no agents, %d breakers open, one redis-server; idle over %s, then %d pages (limit 100) and %d scrapes\n\n",
		max(cfg.Open, 10), max(cfg.Steady, 12500*time.Millisecond), max(cfg.Requests, 50), max(cfg.Requests, 50))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "breakers\ttick\trefresh\tticks / refreshes\tcoordinator CPU\tRedis commands/s\tRedis CPU\tpage p50\tpage Redis cmds\tpage CPU\tscrape p50\tscrape Redis cmds\tscrape CPU\tscrape bytes\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d / %d\t%.2f%%\t%.0f\t%.2f%%\t%s\t%.1f\t%s\t%s\t%.1f\t%s\t%d\t\n", r.Breakers,
			r.Tick.Round(time.Microsecond), r.Refresh.Round(time.Microsecond), r.Ticks, r.Refreshes,
			100*r.CoordinatorCPU, r.RedisCmdsPerSec, 100*r.RedisCPU,
			r.PageP50.Round(10*time.Microsecond), r.PageCmds, r.PageCPU.Round(10*time.Microsecond),
			r.ScrapeP50.Round(10*time.Microsecond), r.ScrapeCmds, r.ScrapeCPU.Round(10*time.Microsecond), r.ScrapeBytes)
	}
	_ = tw.Flush()
}
