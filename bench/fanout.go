package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// FanoutConfig shapes a fan-out run: N subscribers, each following one
// of Breakers breakers as an agent does (a statestore feed of its own
// breaker, its own Redis client, every message decoded), while one
// breaker at a time trips and resets; plain PUBLISH against sharded
// SPUBLISH on the same servers.
type FanoutConfig struct {
	// ClusterAddrs are the masters of a running Redis Cluster on this
	// machine (host:port); empty skips the cluster rows.
	ClusterAddrs []string
	// StandaloneAddr is a running redis-server on this machine; empty
	// skips the standalone rows.
	StandaloneAddr string
	// Subscribers are the counts to measure, one row each per mode.
	Subscribers []int
	// Breakers the subscribers are spread over. Default 30.
	Breakers int
	// Changes measured per row (a trip and a reset are two). Default 60.
	Changes int
	// Progress receives a line per row; nil discards.
	Progress io.Writer
}

// FanoutRow is one topology, mode and subscriber count.
type FanoutRow struct {
	Topology    string // "cluster (3 masters)" or "standalone"
	Mode        statestore.PubSubMode
	Subscribers int
	Changes     int
	// Per change, summed over every node: messages delivered to
	// subscribers, bytes Redis wrote (to clients and the cluster bus),
	// cluster-bus PUBLISH messages, and Redis CPU (user+sys, the idle
	// rate measured just before subtracted).
	Delivered    float64
	BytesOut     float64 // -1 when /proc/<pid>/io could not be read
	BusMessages  float64
	RedisCPU     time.Duration
	PropagateP50 time.Duration // the change's script call → its last subscriber decoded it
	PropagateP99 time.Duration
}

// fanNode is one Redis server of the run, for its counters.
type fanNode struct {
	c   *redis.Client
	pid int
}

type fanCounters struct {
	cpu     time.Duration
	written int64 // -1: unknown
	busPub  int64
}

func (n *fanNode) counters(ctx context.Context) (fanCounters, error) {
	var out fanCounters
	info, err := n.c.Info(ctx, "cpu").Result()
	if err != nil {
		return out, err
	}
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		if v, ok := infoField(info, k); ok {
			f, _ := strconv.ParseFloat(v, 64)
			out.cpu += time.Duration(f * float64(time.Second))
		}
	}
	if ci, err := n.c.ClusterInfo(ctx).Result(); err == nil {
		for _, k := range []string{"cluster_stats_messages_publish_sent", "cluster_stats_messages_publishshard_sent"} {
			if v, ok := infoField(ci, k); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				out.busPub += x
			}
		}
	}
	out.written = -1
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", n.pid)); err == nil {
		if v, ok := infoField(strings.ReplaceAll(string(io), ": ", ":"), "wchar"); ok {
			out.written, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return out, nil
}

func infoField(info, key string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v, true
		}
	}
	return "", false
}

func sumCounters(ctx context.Context, nodes []*fanNode) (fanCounters, error) {
	var s fanCounters
	for _, n := range nodes {
		c, err := n.counters(ctx)
		if err != nil {
			return s, err
		}
		s.cpu += c.cpu
		s.busPub += c.busPub
		if c.written < 0 || s.written < 0 {
			s.written = -1
		} else {
			s.written += c.written
		}
	}
	return s, nil
}

// RunFanout measures every configured topology, mode and count, in that
// order.
func RunFanout(ctx context.Context, cfg FanoutConfig) ([]FanoutRow, error) {
	if cfg.Breakers <= 0 {
		cfg.Breakers = 30
	}
	if cfg.Changes <= 0 {
		cfg.Changes = 60
	}
	type topo struct {
		name    string
		addrs   []string
		cluster bool
	}
	var topos []topo
	if len(cfg.ClusterAddrs) > 0 {
		topos = append(topos, topo{fmt.Sprintf("cluster (%d masters)", len(cfg.ClusterAddrs)), cfg.ClusterAddrs, true})
	}
	if cfg.StandaloneAddr != "" {
		topos = append(topos, topo{"standalone", []string{cfg.StandaloneAddr}, false})
	}
	var rows []FanoutRow
	run := 0
	for _, tp := range topos {
		var nodes []*fanNode
		for _, a := range tp.addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			defer c.Close()
			info, err := c.Info(ctx, "server").Result()
			if err != nil {
				return nil, fmt.Errorf("fanout: %s: %w", a, err)
			}
			v, _ := infoField(info, "process_id")
			pid, _ := strconv.Atoi(v)
			nodes = append(nodes, &fanNode{c: c, pid: pid})
		}
		for _, n := range cfg.Subscribers {
			for _, mode := range []statestore.PubSubMode{statestore.PubSubPlain, statestore.PubSubSharded} {
				run++
				row, err := fanoutRow(ctx, cfg, tp.name, tp.addrs, tp.cluster, nodes, mode, n, fmt.Sprintf("fo%d", run))
				if err != nil {
					return rows, err
				}
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "fanout: %s, %d subscribers, %s: %.0f delivered per change, p99 %s\n",
						row.Topology, row.Subscribers, row.Mode, row.Delivered, row.PropagateP99.Round(time.Microsecond))
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

func fanClient(addrs []string, cluster bool) redis.UniversalClient {
	if cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 2})
	}
	return redis.NewClient(&redis.Options{Addr: addrs[0], PoolSize: 2})
}

// fanBreakers names breakers spread evenly over the nodes that own their
// slots (round robin over the nodes, in order).
func fanBreakers(ctx context.Context, rdb redis.UniversalClient, prefix string, n int) ([]string, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("b%02d", i)
		}
		return out, nil
	}
	var mu sync.Mutex
	var masters []string
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, c.Options().Addr)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.Sort(masters)
	quota := (n + len(masters) - 1) / len(masters)
	per := map[string][]string{}
	for i, total := 0, 0; total < n; i++ {
		name := fmt.Sprintf("b%03d", i)
		c, err := cc.MasterForKey(ctx, prefix+":{"+name+"}:state")
		if err != nil {
			return nil, err
		}
		if a := c.Options().Addr; len(per[a]) < quota {
			per[a] = append(per[a], name)
			total++
		}
	}
	var out []string // node 0, 1, 2, 0, 1, 2, …
	for k := range quota {
		for _, m := range masters {
			if k < len(per[m]) {
				out = append(out, per[m][k])
			}
		}
	}
	return out, nil
}

type fanSub struct {
	feed   *statestore.Feed
	client redis.UniversalClient
}

func fanoutRow(ctx context.Context, cfg FanoutConfig, topoName string, addrs []string, cluster bool, nodes []*fanNode,
	mode statestore.PubSubMode, subscribers int, prefix string) (FanoutRow, error) {
	row := FanoutRow{Topology: topoName, Mode: mode, Subscribers: subscribers}
	pub := fanClient(addrs, cluster)
	defer pub.Close()
	store, err := statestore.New(pub, statestore.Options{Prefix: prefix, PubSub: mode})
	if err != nil {
		return row, err
	}
	names, err := fanBreakers(ctx, pub, prefix, cfg.Breakers)
	if err != nil {
		return row, err
	}
	// arrivals[name/version] counts the users of name that decoded that
	// version, and when the last one did.
	type arrival struct {
		n    int
		last time.Time
	}
	var mu sync.Mutex
	arrivals := map[string]*arrival{}
	var delivered atomic.Int64
	users := map[string]int{}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs := make([]fanSub, subscribers)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, s := range subs {
			if s.feed != nil {
				_ = s.feed.Close()
				_ = s.client.Close()
			}
		}
		wg.Wait()
	}()
	for i := range subs {
		mine := names[i%len(names)]
		users[mine]++
		c := fanClient(addrs, cluster)
		s, err := statestore.New(c, statestore.Options{Prefix: prefix, PubSub: mode})
		if err != nil {
			return row, err
		}
		subs[i] = fanSub{feed: s.Follow(sctx, statestore.FollowOptions{Names: []string{mine}}), client: c}
		wg.Add(1)
		go func(f *statestore.Feed) {
			defer wg.Done()
			for n := range f.C() {
				if n.Kind != statestore.NoticeChange {
					continue
				}
				delivered.Add(1)
				sn, err := report.DecodeMessage(n.Payload)
				if err != nil || sn.Name != mine {
					continue // a plain subscriber hears every breaker: its agent ignores the others
				}
				at := time.Now()
				mu.Lock()
				k := sn.Name + "/" + strconv.FormatInt(sn.Version, 10)
				a := arrivals[k]
				if a == nil {
					a = &arrival{}
					arrivals[k] = a
				}
				a.n++
				a.last = at
				mu.Unlock()
			}
		}(subs[i].feed)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range subs {
		for s.feed.Stats().Subscriptions < 1 {
			if time.Now().After(deadline) {
				return row, fmt.Errorf("fanout: %d subscribers not subscribed within 60s", subscribers)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var used []string
	for _, n := range names {
		if users[n] > 0 {
			used = append(used, n)
		}
	}
	// The idle rate of the servers' counters, to subtract.
	idleFrom, err := sumCounters(ctx, nodes)
	if err != nil {
		return row, err
	}
	idleStart := time.Now()
	time.Sleep(time.Second)
	idleTo, err := sumCounters(ctx, nodes)
	if err != nil {
		return row, err
	}
	idleFor := time.Since(idleStart)
	delivered.Store(0)
	from, err := sumCounters(ctx, nodes)
	if err != nil {
		return row, err
	}
	start := time.Now()
	p := statestore.DefaultPolicy()
	var lat []time.Duration
	for i := range cfg.Changes {
		name := used[(i/2)%len(used)]
		t0 := time.Now()
		var res statestore.Result
		if i%2 == 0 {
			res, err = store.Report(ctx, name, p, "fanout", statestore.Batch{Fail: int64(p.ConsecutiveFailures), TrailingFail: int64(p.ConsecutiveFailures)})
		} else {
			res, err = store.Reset(ctx, name, p, "fanout", "fanout")
		}
		if err != nil {
			return row, err
		}
		if res.Transition == nil {
			return row, fmt.Errorf("fanout: change %d of %s made no transition", i, name)
		}
		k := name + "/" + strconv.FormatInt(res.Version, 10)
		waitUntil := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			a := arrivals[k]
			done := a != nil && a.n >= users[name]
			var last time.Time
			if done {
				last = a.last
			}
			mu.Unlock()
			if done {
				lat = append(lat, last.Sub(t0))
				break
			}
			if time.Now().After(waitUntil) {
				return row, fmt.Errorf("fanout: change %s not seen by its %d subscribers within 10s", k, users[name])
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	// Let stray deliveries (plain subscribers that do not use the breaker)
	// land before counting.
	settle := time.Now().Add(2 * time.Second)
	want := int64(cfg.Changes * subscribers)
	if mode == statestore.PubSubSharded {
		want = 0
		for i := range cfg.Changes {
			want += int64(users[used[(i/2)%len(used)]])
		}
	}
	for delivered.Load() < want && time.Now().Before(settle) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	to, err := sumCounters(ctx, nodes)
	if err != nil {
		return row, err
	}
	k := float64(cfg.Changes)
	idleCPU := time.Duration(float64(idleTo.cpu-idleFrom.cpu) * float64(elapsed) / float64(idleFor))
	row.Changes = cfg.Changes
	row.Delivered = float64(delivered.Load()) / k
	row.RedisCPU = max(0, (to.cpu-from.cpu-idleCPU)/time.Duration(cfg.Changes))
	row.BusMessages = float64(to.busPub-from.busPub) / k
	row.BytesOut = -1
	if to.written >= 0 && from.written >= 0 {
		idleBytes := float64(idleTo.written-idleFrom.written) * float64(elapsed) / float64(idleFor)
		row.BytesOut = max(0, (float64(to.written-from.written)-idleBytes)/k)
	}
	slices.Sort(lat)
	row.PropagateP50 = lat[len(lat)/2]
	row.PropagateP99 = lat[min(len(lat)-1, len(lat)*99/100)]
	return row, nil
}

// WriteFanoutTable prints the rows as one table.
func WriteFanoutTable(w io.Writer, cfg FanoutConfig, rows []FanoutRow) {
	fmt.Fprintf(w, "Fan-out: N subscribers in one process, each following 1 of %d breakers (spread over the nodes) on its own Redis client;\n"+
		"one breaker at a time trips and resets (%d changes per row); per change, summed over the nodes\n\n", max(cfg.Breakers, 30), max(cfg.Changes, 60))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topology\tsubscribers\tpub/sub\tmessages delivered\tall its subscribers saw it p50 / p99\tRedis bytes written\tcluster-bus publishes\tRedis CPU\t")
	for _, r := range rows {
		bytes := "n/a"
		if r.BytesOut >= 0 {
			bytes = fmt.Sprintf("%.0f", r.BytesOut)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%s / %s\t%s\t%.1f\t%s\t\n", r.Topology, r.Subscribers, r.Mode, r.Delivered,
			r.PropagateP50.Round(10*time.Microsecond), r.PropagateP99.Round(10*time.Microsecond), bytes, r.BusMessages,
			r.RedisCPU.Round(time.Microsecond))
	}
	_ = tw.Flush()
}
