package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

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
}

// Server is the sidecar's HTTP handler.
type Server struct {
	cfg        *Config
	agent      *agentlib.Agent
	log        zerolog.Logger
	upstreams  map[string]*upstream
	breakers   map[string]*agentlib.Breaker // by provider name, fixed at New
	budget     *retryBudget
	firstBytes firstBytes
	redact     *redactor
	cache      *cache
	metrics    *metrics
	maxBody    int64
	mux        *http.ServeMux
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
		cfg: o.Config, agent: o.Agent, log: log, upstreams: map[string]*upstream{}, breakers: map[string]*agentlib.Breaker{},
		budget:  newRetryBudget(o.Config.Retry.Budget, o.Config.Retry.MinPerSecond),
		redact:  newRedactor(o.Config),
		metrics: newMetrics(o.Agent.Degraded), maxBody: o.MaxBody, mux: http.NewServeMux(),
	}
	for name, p := range o.Config.Providers {
		s.upstreams[name] = newUpstream(p)
		// Mirror every breaker from the start, so the first request
		// already sees the cluster's state, and keep the handles: a
		// request then reads its breakers with no lookup at all.
		b, err := o.Agent.Breaker(p.Breaker)
		if err != nil {
			return nil, fmt.Errorf("sidecar: provider %s: %w", name, err)
		}
		s.breakers[name] = b
	}
	if o.Redis != nil {
		s.cache = &cache{rdb: o.Redis, prefix: o.CachePrefix}
	}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	s.mux.HandleFunc("GET /v1/models", s.models)
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
		writeOpenAIError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s: this proxy serves POST /v1/chat/completions and GET /v1/models", r.Method, r.URL.Path), "invalid_request_error", "unknown_url", "")
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

func (s *Server) chatCompletions(rw http.ResponseWriter, r *http.Request) {
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	w := &statusWriter{ResponseWriter: rw}
	routeName := "none"
	defer func() { s.metrics.requests.WithLabelValues(routeName, fmt.Sprint(w.status)).Inc() }()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit), "invalid_request_error", "", "")
			return
		}
		writeOpenAIError(w, http.StatusBadRequest, "could not read the request body", "invalid_request_error", "", "")
		return
	}
	req, err := parseChatRequest(body)
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		writeOpenAIError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", "", re.param)
		return
	}
	route, ok := s.cfg.RouteFor(req.Model)
	if !ok {
		writeOpenAIError(w, http.StatusNotFound, fmt.Sprintf("no route serves the model %q", req.Model), "invalid_request_error", "model_not_found", "model")
		return
	}
	routeName = route.Name
	if !route.Cache || req.Stream || s.cache == nil {
		s.walk(r.Context(), w, route, req)
		return
	}
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

// models lists the models the routes serve, in OpenAI's format.
func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	set := map[string]string{}
	for _, r := range s.cfg.Routes {
		for _, m := range r.Models {
			if m != "*" {
				set[m] = "fusebox:" + r.Name
			}
		}
		for _, p := range r.Chain {
			for m := range p.Models {
				if m != "*" {
					if _, ok := set[m]; !ok {
						set[m] = "fusebox:" + r.Name
					}
				}
			}
		}
	}
	var ids []string
	for m := range set {
		ids = append(ids, m)
	}
	slices.Sort(ids)
	data := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, map[string]any{"id": id, "object": "model", "created": 0, "owned_by": set[id]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
