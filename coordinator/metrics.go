package coordinator

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	}
}

// Collectors returns the coordinator's metrics for a Prometheus registry.
func (c *Coordinator) Collectors() []prometheus.Collector {
	m := c.metrics
	return []prometheus.Collector{m.transitions, m.reports, m.parts, m.outcomes, m.probes, m.probeDuration, newClusterCollector(c)}
}

// clusterCollector reads the cluster's state on every scrape: one gauge
// per breaker and state (1 for the breaker's current one), and the agents
// heard from recently.
type clusterCollector struct {
	c                          *Coordinator
	state, agents, degradedAgs *prometheus.Desc
}

var effectiveStates = []string{"closed", "open", "half_open", "forced_open", "forced_closed"}

func newClusterCollector(c *Coordinator) *clusterCollector {
	return &clusterCollector{
		c: c,
		state: prometheus.NewDesc("fusebox_breaker_state",
			"1 for the state each breaker is in (closed, open, half_open, forced_open, forced_closed), 0 for the others.",
			[]string{"breaker", "state"}, nil),
		agents: prometheus.NewDesc("fusebox_agents_seen",
			"Agents heard from in the last 30 seconds, by any coordinator.", nil, nil),
		degradedAgs: prometheus.NewDesc("fusebox_agents_degraded",
			"Agents heard from in the last 30 seconds that said they were degraded.", nil, nil),
	}
}

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.state
	ch <- cc.agents
	ch <- cc.degradedAgs
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if bs, err := cc.c.Breakers(ctx); err == nil {
		for _, b := range bs {
			eff := b.Effective()
			for _, st := range effectiveStates {
				v := 0.0
				if st == eff {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(cc.state, prometheus.GaugeValue, v, b.Name, st)
			}
		}
	}
	if ags, err := cc.c.Agents(ctx); err == nil {
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
