package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds the readiness check: a probe gets its answer within
// it even while Redis hangs, pauses or shuts down, whatever the Redis
// client's own timeouts.
const readyTimeout = 500 * time.Millisecond

// healthz answers while the process serves.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Redis answers within readyTimeout, otherwise
// 503 with a problem naming redis, the one dependency.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	// The check runs beside the handler so that the answer never waits
	// for longer than the bound; a late result is dropped.
	res := make(chan error, 1)
	go func() { res <- s.d.Ready(ctx) }()
	var err error
	select {
	case err = <-res:
	case <-ctx.Done():
		err = ctx.Err()
	}
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	case errors.Is(err, context.DeadlineExceeded):
		return echo.NewHTTPError(http.StatusServiceUnavailable, fmt.Sprintf("redis unreachable: no answer within %s", readyTimeout))
	default:
		return echo.NewHTTPError(http.StatusServiceUnavailable, "redis unreachable: "+err.Error())
	}
}
