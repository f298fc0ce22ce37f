package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Domain is what the handlers need from the coordinator.
type Domain interface {
	Ingest(ctx context.Context, r report.Valid) ([]report.Answer, error)
	Permit(ctx context.Context, r report.PermitRequest) (report.PermitAnswer, error)
	Ready(ctx context.Context) error
	Breakers(ctx context.Context, cursor string, limit int) (coordinator.Page, error)
	Breaker(ctx context.Context, name string) (coordinator.Breaker, error)
	Force(ctx context.Context, name string, o statestore.Override, ttl time.Duration, actor, reason string) (statestore.Result, error)
	Release(ctx context.Context, name, actor, reason string) (statestore.Result, error)
	Reset(ctx context.Context, name, actor, reason string) (statestore.Result, error)
	Delete(ctx context.Context, name, actor, reason string) (statestore.Result, error)
	Events(ctx context.Context, name string, count int64, before string) ([]statestore.Event, error)
	EventsSince(ctx context.Context, after statestore.EventCursor, count int64) ([]statestore.Event, error)
	Subscribe() (<-chan statestore.Event, func())
	Agents(ctx context.Context) ([]statestore.AgentInfo, error)
	Rates(ctx context.Context, names []string) ([]statestore.Rates, error)
	Timelines(ctx context.Context, names []string, span time.Duration, limit int64) ([]statestore.Timeline, time.Time, error)
	Routes(ctx context.Context) ([]statestore.RouteRates, error)
}

var _ Domain = (*coordinator.Service)(nil)

// Config tunes the server. A zero field means the default on its comment.
type Config struct {
	// BodyLimit caps request bodies, in bytes. Default 1 MiB.
	BodyLimit int64
	// Logger receives server errors. Default: discard.
	Logger *zerolog.Logger
	// Tokens may call the API; each request names one with
	// Authorization: Bearer <secret>. With none, every protected route
	// answers 401.
	Tokens []config.Token
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
	// Collectors are served on /metrics beside the server's own.
	Collectors []prometheus.Collector
}

// Server is the coordinator's HTTP handler. It is safe for concurrent
// use, as an http.Handler must be.
type Server struct {
	e      *echo.Echo
	log    zerolog.Logger
	d      Domain
	auth   *authenticator
	public bool

	registry *prometheus.Registry
	requests *prometheus.CounterVec

	closing   chan struct{}
	closeOnce sync.Once
}

// route is one entry of the route table.
type route struct {
	method, path string
	need         config.Role //  = open
	handler      echo.HandlerFunc
}

// New builds the route table.
func New(cfg Config, d Domain) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{e: e, log: log, d: d, auth: newAuthenticator(cfg.Tokens), public: cfg.MetricsPublic, closing: make(chan struct{})}
	s.initMetrics(cfg.Collectors)
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	e.Use(s.countRequests)
	e.Use(bodyLimit(cfg.BodyLimit))

	for _, r := range s.routes() {
		h := r.handler
		if r.need != "" {
			h = s.require(r.need, h)
		}
		e.Add(r.method, r.path, h)
	}
	return s
}

// routes is the route table: every endpoint, the role it needs, and what
// it does. The OpenAPI document must describe each of them.
func (s *Server) routes() []route {
	metricsRole := config.RoleRead
	if s.public {
		metricsRole = ""
	}
	return []route{
		{http.MethodGet, "/healthz", "", s.healthz},                                           // the process serves
		{http.MethodGet, "/readyz", "", s.readyz},                                             // Redis answers
		{http.MethodGet, "/openapi.json", "", s.openapi},                                      // this API's OpenAPI document
		{http.MethodGet, "/metrics", metricsRole, s.metrics},                                  // Prometheus metrics
		{http.MethodGet, "/", "", s.dashboard},                                                // the dashboard
		{http.MethodGet, "/assets/:file", "", s.asset},                                        // the dashboard's assets
		{http.MethodPost, "/v1/reports", config.RoleAgent, s.postReport},                      // an agent's outcome batch
		{http.MethodPost, "/v1/permits", config.RoleAgent, s.postPermit},                      // a traffic-mode half-open permit
		{http.MethodGet, "/v1/breakers", config.RoleRead, s.listBreakers},                     // the breakers, a page at a time
		{http.MethodGet, "/v1/breakers/:name", config.RoleRead, s.getBreaker},                 // one breaker
		{http.MethodDelete, "/v1/breakers/:name", config.RoleAdmin, s.deleteBreaker},          // forget a breaker
		{http.MethodPost, "/v1/breakers/:name/force-open", config.RoleAdmin, s.forceOpen},     // force a breaker open
		{http.MethodPost, "/v1/breakers/:name/force-closed", config.RoleAdmin, s.forceClosed}, // force a breaker closed
		{http.MethodPost, "/v1/breakers/:name/release", config.RoleAdmin, s.release},          // end an override
		{http.MethodPost, "/v1/breakers/:name/reset", config.RoleAdmin, s.reset},              // close with fresh counters, no override
		{http.MethodGet, "/v1/breakers/:name/events", config.RoleRead, s.breakerEvents},       // a breaker's journal, newest first
		{http.MethodGet, "/v1/breakers/:name/rates", config.RoleRead, s.breakerRates},         // a breaker's calls and failures per second
		{http.MethodGet, "/v1/rates", config.RoleRead, s.listRates},                           // the same for up to 100 breakers
		{http.MethodGet, "/v1/timelines", config.RoleRead, s.listTimelines},                   // up to 100 breakers' journals over the last hour
		{http.MethodGet, "/v1/routes", config.RoleRead, s.listRoutes},                         // what the agents' routes served, per second
		{http.MethodGet, "/v1/events/stream", config.RoleRead, s.streamEvents},                // every transition, live (SSE)
		{http.MethodGet, "/v1/agents", config.RoleRead, s.listAgents},                         // agents heard from in the last 30s
	}
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// CloseStreams ends every open event stream, so a graceful shutdown does
// not wait for clients that never hang up. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// bodyLimit refuses bodies over limit bytes with 413, whether or not the
// client declared a Content-Length.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// Route is one served endpoint.
type Route struct {
	Method string
	Path   string // echo's form: /v1/breakers/:name
	Role   config.Role
}

// OpenAPIPath is the path in OpenAPI's form: /v1/breakers/{name}.
func (r Route) OpenAPIPath() string {
	parts := strings.Split(r.Path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// Routes lists every endpoint the server serves.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.routes() {
		out = append(out, Route{Method: r.method, Path: r.path, Role: r.need})
	}
	return out
}
