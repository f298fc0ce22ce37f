package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Ingester applies agents' reports.
type Ingester interface {
	Ingest(ctx context.Context, r report.Report) ([]statestore.Snapshot, error)
}

// ReadinessChecker says whether the coordinator can serve (Redis answers).
type ReadinessChecker interface {
	Ready(ctx context.Context) error
}

// Config tunes the server. A zero field means the default on its comment.
type Config struct {
	// BodyLimit caps request bodies, in bytes. Default 1 MiB.
	BodyLimit int64
	// Logger receives server errors. Default: discard.
	Logger *zerolog.Logger
}

// Server is the coordinator's HTTP handler.
type Server struct {
	e   *echo.Echo
	log zerolog.Logger

	ingest Ingester
	ready  ReadinessChecker
}

// New builds the route table.
func New(cfg Config, ingest Ingester, ready ReadinessChecker) *Server {
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
	s := &Server{e: e, log: log, ingest: ingest, ready: ready}
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	e.Use(bodyLimit(cfg.BodyLimit))

	s.registerHealthRoutes()
	s.registerReportRoutes()
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

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
