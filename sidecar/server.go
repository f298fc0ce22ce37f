package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fusebox-io/fusebox/agentlib"
)

// Options are what a Server needs. A zero field means the default on its
// comment.
type Options struct {
	Config *Config
	Agent  *agentlib.Agent
	// Redis holds the response cache; nil turns caching off.
	Redis redis.UniversalClient
	// CachePrefix starts the cache keys. Default "fusebox".
	CachePrefix string
	// MaxBody caps request bodies. Default 10 MiB.
	MaxBody int64
	// Logger: default discard.
	Logger *zerolog.Logger
	// TracerProvider makes a span per request and per provider attempt
	// (tracing.go); nil (or a no-op provider) turns tracing off.
	TracerProvider trace.TracerProvider
	// Propagator reads the caller's trace context and writes the
	// provider's. Default W3C tracecontext and baggage.
	Propagator propagation.TextMapPropagator
}

// Server is the sidecar's HTTP handler.
type Server struct {
	cfg        *Config
	agent      *agentlib.Agent
	log        zerolog.Logger
	upstreams  map[string]*upstream
	breakers   map[string]*providerBreakers // by provider name, fixed at New
	models     *modelLists
	budget     *retryBudget
	firstBytes firstBytes
	redact     *redactor
	cache      *cache
	metrics    *metrics
	maxBody    int64
	mux        *http.ServeMux
	tracing    *tracer // nil: off
}

// New builds the sidecar.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Agent == nil {
		return nil, errors.New("sidecar: Config and Agent are required")
	}
	log := zerolog.Nop()
	if o.Logger != nil {
		log = *o.Logger
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 10 << 20
	}
	if o.CachePrefix == "" {
		o.CachePrefix = "fusebox"
	}
	s := &Server{
		cfg: o.Config, agent: o.Agent, log: log, upstreams: map[string]*upstream{}, breakers: map[string]*providerBreakers{},
		budget:  newRetryBudget(o.Config.Retry.Budget, o.Config.Retry.MinPerSecond),
		redact:  newRedactor(o.Config),
		metrics: newMetrics(o.Agent.Degraded), maxBody: o.MaxBody, mux: http.NewServeMux(),
	}
	s.tracing = newTracer(o.TracerProvider, o.Propagator, o.Config)
	for name, p := range o.Config.Providers {
		s.upstreams[name] = newUpstream(p)
		// Mirror every breaker the file names from the start, so the
		// first request already sees the cluster's state, and keep the
		// handles: a request then finds its breaker with no lookup (per
		// provider) or one map read (per model).
		b, err := newProviderBreakers(p, o.Agent, log)
		if err != nil {
			return nil, fmt.Errorf("sidecar: provider %s: %w", name, err)
		}
		s.breakers[name] = b
	}
	s.models = newModelLists(s)
	if o.Redis != nil {
		s.cache = &cache{rdb: o.Redis, prefix: o.CachePrefix}
	}
	for _, api := range APIs {
		s.mux.HandleFunc("POST "+api.Path(), s.handle(api))
	}
	s.mux.HandleFunc("GET /v1/models", s.listModels)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		// Degraded still serves (on local breakers): it is ready. The
		// body says which links are down (readiness.go).
		writeJSON(w, http.StatusOK, s.readiness(r.Context()))
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api := APIChat
		if r.Header.Get("anthropic-version") != "" {
			api = APIMessages
		}
		writeAPIError(w, api, http.StatusNotFound, fmt.Sprintf("no route for %s %s: this proxy serves POST /v1/chat/completions, /v1/messages, /v1/embeddings, /v1/responses and GET /v1/models", r.Method, r.URL.Path), "invalid_request_error", "unknown_url", "")
	})
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// handle serves one inbound API: read and check the body, find the
// route, answer from the cache or walk the chain.
func (s *Server) handle(api API) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		w := &statusWriter{ResponseWriter: rw}
		r, span := s.traceServer(r, api)
		defer traceServerEnd(span, w)
		routeName := "none"
		defer func() { s.metrics.requests.WithLabelValues(string(api), routeName, strconv.Itoa(w.status)).Inc() }()

		body, err := readAll(http.MaxBytesReader(w, r.Body, s.maxBody), r.ContentLength)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeAPIError(w, api, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit), "request_too_large", "", "")
				return
			}
			writeAPIError(w, api, http.StatusBadRequest, "could not read the request body", "invalid_request_error", "", "")
			return
		}
		req, err := parseRequest(api, body, r.Header)
		if err != nil {
			var re *requestError
			errors.As(err, &re)
			writeAPIError(w, api, http.StatusBadRequest, re.msg, "invalid_request_error", "", re.param)
			return
		}
		route, ok := s.cfg.RouteForAPI(api, req.model)
		if !ok {
			typ := "invalid_request_error"
			if api == APIMessages {
				typ = "not_found_error"
			}
			writeAPIError(w, api, http.StatusNotFound, fmt.Sprintf("no route serves the model %q on %s", req.model, api.Path()), typ, "model_not_found", "model")
			return
		}
		routeName = route.Name
		traceRoute(span, route, req)
		if route.scan {
			req.needs = req.scanNeeds()
		}
		if !route.Cache || req.stream || s.cache == nil || api == APIResponses {
			s.walk(r.Context(), w, route, req)
			return
		}
		s.cached(w, r, route, req)
	}
}

// cached serves a non-streamed request through the route's cache.
func (s *Server) cached(w http.ResponseWriter, r *http.Request, route *Route, req *request) {
	if strings.Contains(strings.ToLower(r.Header.Get("Cache-Control")), "no-cache") {
		s.metrics.cache.WithLabelValues("bypass").Inc()
		w.Header().Set(HeaderCache, "bypass")
		s.walk(r.Context(), w, route, req)
		return
	}
	key := s.cache.key(route.Name, req, r.Header.Get(s.cfg.UserHeader))
	cp, err := s.cache.get(r.Context(), key)
	if err != nil {
		// Redis is away: serve without the cache rather than fail.
		s.metrics.cache.WithLabelValues("error").Inc()
		w.Header().Set(HeaderCache, "bypass")
		s.walk(r.Context(), w, route, req)
		return
	}
	if cp != nil {
		s.metrics.cache.WithLabelValues("hit").Inc()
		cp.writeTo(w, "hit")
		return
	}
	s.metrics.cache.WithLabelValues("miss").Inc()
	// Concurrent identical requests share one provider call. It runs on
	// its own context so one caller hanging up does not fail the others.
	v, _, _ := s.cache.group.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.longestTotal())
		defer cancel()
		rec := &recorder{h: http.Header{}}
		s.walk(ctx, rec, route, req)
		cp := &captured{Status: rec.status, Header: rec.h, Body: rec.buf.Bytes()}
		if cp.Status == http.StatusOK {
			if err := s.cache.set(ctx, key, cp, route.CacheTTL); err != nil {
				s.log.Warn().Err(err).Msg("cache write failed")
			}
		}
		return cp, nil
	})
	v.(*captured).writeTo(w, "miss")
}

func (s *Server) longestTotal() time.Duration {
	var d time.Duration
	for _, p := range s.cfg.Providers {
		d += p.Total
	}
	return d + time.Duration(len(s.cfg.Providers)*s.cfg.Retry.Attempts)*s.cfg.Retry.Max
}

// readAll reads r to its end into a buffer the size the body says it
// is (up to 1 MiB: more grows as it comes), rather than growing one from
// 512 bytes as io.ReadAll does.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > 1<<20 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // room for the read that sees the end
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
