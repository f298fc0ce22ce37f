package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	served          *prometheus.CounterVec
	upstream        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	skipped         *prometheus.CounterVec
	retries         *prometheus.CounterVec
	hedges          *prometheus.CounterVec
	budgetExhausted prometheus.Counter
	unavailable     prometheus.Counter
	cache           *prometheus.CounterVec
	inFlight        prometheus.Gauge
}

func newMetrics(degraded func() bool) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_requests_total",
			Help: "Requests received, by route and status answered."}, []string{"route", "status"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_served_total",
			Help: "Requests served, by provider and whether it was a fallback."}, []string{"provider", "fallback"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_upstream_calls_total",
			Help: "Calls that left for a provider, each counted once when it ended, by provider and result: an HTTP status, transport_error, connect_timeout, first_byte_timeout, first_token_timeout, total_timeout, stall, stream_error, bad_answer, client_gone (the caller hung up), hedge_lost (another provider answered first), refused or skipped (never sent: the request could not be sent to it)."}, []string{"provider", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fusebox_sidecar_upstream_seconds",
			Help: "Duration of successful provider calls.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}, []string{"provider"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_skipped_total",
			Help: "Providers skipped because their breaker denied."}, []string{"provider"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_retries_total",
			Help: "Retries of fast transport failures (refused, reset), counted when sent, by provider."}, []string{"provider"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_hedges_total",
			Help: "Hedged races, by provider and result: started (the hedge was sent), won, lost, budget_exhausted (the first provider's wait found no budget)."}, []string{"provider", "result"}),
		budgetExhausted: prometheus.NewCounter(prometheus.CounterOpts{Name: "fusebox_sidecar_retry_budget_exhausted_total",
			Help: "Retries refused because the retry budget was spent."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Name: "fusebox_sidecar_unavailable_total",
			Help: "Requests answered 503 because every provider was unavailable."}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_cache_total",
			Help: "Cache lookups, by result (hit, miss, bypass, error)."}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fusebox_sidecar_in_flight",
			Help: "Requests being served now."}),
	}
	deg := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fusebox_agent_degraded",
		Help: "1 while the agent decides on local breakers (Redis or the coordinator unreachable)."}, func() float64 {
		if degraded() {
			return 1
		}
		return 0
	})
	m.registry.MustRegister(m.requests, m.served, m.upstream, m.latency, m.skipped, m.retries, m.hedges, m.budgetExhausted,
		m.unavailable, m.cache, m.inFlight, deg,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
