package coordinator

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fusebox-io/fusebox/statestore"
)

// metrics are the coordinator's own counters. They are not registered
// anywhere; Collectors hands them to whoever serves /metrics.
type metrics struct {
	transitions   *prometheus.CounterVec
	reports       prometheus.Counter
	parts         *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	probes        *prometheus.CounterVec
	probeDuration *prometheus.HistogramVec
	refused       prometheus.Counter
	tick          prometheus.Histogram
	refresh       prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fusebox_transitions_total",
			Help: "Breaker transitions made by this coordinator, by from state, to state and reason.",
		}, []string{"from", "to", "reason"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fusebox_reports_ingested_total",
			Help: "Agent reports applied by this coordinator (heartbeats included).",
		}),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fusebox_report_parts_total",
			Help: "Breakers' parts of agent reports, by what was done with them (applied, duplicate: a resent report; stale: about a state that is gone).",
		}, []string{"applied"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fusebox_outcomes_total",
			Help: "Call outcomes reported by agents and counted, by result (ok, fail, slow, hung).",
		}, []string{"result"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fusebox_probes_total",
			Help: "Canary probes run by this coordinator, by breaker and result (succeeded, failed, stale).",
		}, []string{"breaker", "result"}),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fusebox_probe_duration_seconds",
			Help:    "How long canary probes took, by breaker.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"breaker"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fusebox_reports_refused_total",
			Help: "Agent reports refused whole by this coordinator because they named new breakers past a registration limit.",
		}),
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fusebox_loop_tick_seconds",
			Help:    "How long this coordinator's timer took to move the due breakers on, per tick (registry refreshes apart).",
			Buckets: loopBuckets,
		}),
		refresh: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fusebox_registry_refresh_seconds",
			Help:    "How long this coordinator's registry refresh took (the registry's changes, the breakers' states it checks, the configured policies), with that tick.",
			Buckets: loopBuckets,
		}),
	}
}

// loopBuckets time the control loop's steps: 100 µs to 5 s.
var loopBuckets = prometheus.ExponentialBucketsRange(0.0001, 5, 16)

// clusterCollector serves the cluster's state on every scrape: one gauge
// per breaker, labelled with its current state (at most
// MetricsMaxBreakers of them, those not closed first), how many
// breakers were left out, and the agents heard from recently. The
// breakers' states come from the Loop's view (clusterView), not from
// Redis: a scrape costs the same whatever the registry's size.
type clusterCollector struct {
	b                                   *base
	state, omitted, agents, degradedAgs *prometheus.Desc
}

func newClusterCollector(b *base) *clusterCollector {
	return &clusterCollector{
		b: b,
		state: prometheus.NewDesc("fusebox_breaker_state",
			"1, labelled with the state each breaker is in (closed, open, half_open, forced_open, forced_closed): one series per breaker, those not closed first, up to the coordinator's metrics cap.",
			[]string{"breaker", "state"}, nil),
		omitted: prometheus.NewDesc("fusebox_breaker_state_omitted",
			"Breakers left out of fusebox_breaker_state by the coordinator's metrics cap (--metrics-max-breakers).", nil, nil),
		agents: prometheus.NewDesc("fusebox_agents_seen",
			"Agents heard from in the last 30 seconds, by any coordinator.", nil, nil),
		degradedAgs: prometheus.NewDesc("fusebox_agents_degraded",
			"Agents heard from in the last 30 seconds that said they were degraded.", nil, nil),
	}
}

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.state
	ch <- cc.omitted
	ch <- cc.agents
	ch <- cc.degradedAgs
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if snaps, omitted, err := cc.b.stateSeries(ctx); err == nil {
		for _, s := range snaps {
			ch <- prometheus.MustNewConstMetric(cc.state, prometheus.GaugeValue, 1, s.Name, s.Effective())
		}
		ch <- prometheus.MustNewConstMetric(cc.omitted, prometheus.GaugeValue, float64(omitted))
	}
	if ags, err := cc.b.Agents(ctx); err == nil {
		degraded := 0
		for _, a := range ags {
			if a.Degraded {
				degraded++
			}
		}
		ch <- prometheus.MustNewConstMetric(cc.agents, prometheus.GaugeValue, float64(len(ags)))
		ch <- prometheus.MustNewConstMetric(cc.degradedAgs, prometheus.GaugeValue, float64(degraded))
	}
}

// stateSeries are the breakers with a state series and how many were
// left out: from the Loop's view once it has read the registry; before
// (or with no Loop running) from Redis.
func (b *base) stateSeries(ctx context.Context) ([]statestore.Snapshot, int, error) {
	if names, due, ok := b.view.get(); ok {
		snaps, omitted := stateSeries(names, due, b.cfg.MetricsMaxBreakers)
		return snaps, omitted, nil
	}
	names, err := b.names(ctx)
	if err != nil {
		return nil, 0, err
	}
	snaps, err := b.store.Snapshots(ctx, names)
	if err != nil {
		return nil, 0, err
	}
	// Not closed first (the ones worth a look), then by name: the order
	// Snapshots kept.
	slices.SortStableFunc(snaps, func(x, y statestore.Snapshot) int {
		return cmpBool(!due(x), !due(y))
	})
	keep := min(len(snaps), b.cfg.MetricsMaxBreakers)
	return snaps[:keep], len(snaps) - keep, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
