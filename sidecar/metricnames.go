package sidecar

import "github.com/prometheus/client_golang/prometheus"

// MetricsGatherer returns a fresh copy of the registry a sidecar serves on
// /metrics, tied to no server, with one child (empty label values) of each
// labelled family, so that a Gather lists every family and its labels
// before anything was counted. It is for checking dashboards and alerts
// against what the sidecar exports; a server never uses it. A labelled
// family added to metrics must be added here too, or it is missing.
func MetricsGatherer() prometheus.Gatherer {
	m := newMetrics(func() bool { return false })
	touch(m.requests.GetMetricWithLabelValues)
	touch(m.served.GetMetricWithLabelValues)
	touch(m.upstream.GetMetricWithLabelValues)
	touch(m.latency.GetMetricWithLabelValues)
	touch(m.skipped.GetMetricWithLabelValues)
	touch(m.ineligible.GetMetricWithLabelValues)
	touch(m.exhausted.GetMetricWithLabelValues)
	touch(m.models.GetMetricWithLabelValues)
	touch(m.retries.GetMetricWithLabelValues)
	touch(m.hedges.GetMetricWithLabelValues)
	touch(m.cache.GetMetricWithLabelValues)
	return m.registry
}

// touch creates a family's child with empty label values, whatever the
// number of its labels.
func touch[M any](get func(...string) (M, error)) {
	for n := range 16 {
		if _, err := get(make([]string, n)...); err == nil {
			return
		}
	}
}
