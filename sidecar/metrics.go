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
	ineligible      *prometheus.CounterVec
	exhausted       *prometheus.CounterVec
	models          *prometheus.CounterVec
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
			Help: "Requests received, by inbound API (chat, messages, embeddings, responses), route and status answered."}, []string{"api", "route", "status"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_served_total",
			Help: "Requests served, by provider and whether it was a fallback."}, []string{"provider", "fallback"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_upstream_calls_total",
			Help: "Calls that left for a provider, each counted once when it ended, by provider and result: an HTTP status, transport_error, connect_timeout, first_byte_timeout, first_token_timeout, total_timeout, stall, stream_error, bad_answer, untranslatable (it answered well, in what the caller's format cannot say), too_large, client_gone (the caller hung up), hedge_lost (another provider answered first), internal_error (a fault of the sidecar's own, logged)."}, []string{"provider", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fusebox_sidecar_upstream_seconds",
			Help: "Duration of successful provider calls.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}, []string{"provider"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_skipped_total",
			Help: "Providers skipped because their breaker denied."}, []string{"provider"}),
		ineligible: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_ineligible_total",
			Help: "Providers passed over because they cannot serve the request, by provider and reason: tools, vision, json_mode, context_window (a capability the provider declares it lacks), untranslatable (the request has no faithful translation for it), untranslatable_answer, stateful (a Responses request continuing a stored response), invalid."}, []string{"provider", "reason"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_rate_limit_exhausted_total",
			Help: "Successful answers whose rate-limit headers said the limit is exhausted until a reset, reported to the cluster as a Retry-After, by provider."}, []string{"provider"}),
		models: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fusebox_sidecar_model_lists_total",
			Help: "Model lists asked of a provider for GET /v1/models, by provider and result (ok, error: the last good list or the configured models were used)."}, []string{"provider", "result"}),
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
	m.registry.MustRegister(m.requests, m.served, m.upstream, m.latency, m.skipped, m.ineligible, m.exhausted, m.models, m.retries, m.hedges, m.budgetExhausted,
		m.unavailable, m.cache, m.inFlight, deg,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
