package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz answers while the process serves.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Redis answers, 503 otherwise.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.d.Ready(ctx); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "redis unreachable")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
