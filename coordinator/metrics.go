package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the coordinator's own counters. They are not registered
// anywhere; Collectors hands them to whoever serves /metrics.
type metrics struct {
	transitions   *prometheus.CounterVec
	reports       prometheus.Counter
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
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fusebox_outcomes_total",
			Help: "Call outcomes reported by agents, by result (ok, fail, slow).",
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
	return []prometheus.Collector{m.transitions, m.reports, m.outcomes, m.probes, m.probeDuration}
}
