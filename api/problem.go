package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// handleError is the one place where errors become HTTP statuses.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, detail := classifyRequest(c.Request().Context(), err)
	if status >= 500 {
		s.log.Error().Err(err).Str("method", c.Request().Method).Str("path", c.Request().URL.Path).Int("status", status).Msg("request failed")
	}
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, p)
}

// StatusClientClosedRequest is nginx's 499: the client hung up before
// the answer. Nobody reads it; it keeps the logs and metrics honest.
const StatusClientClosedRequest = 499

// classifyRequest is classify for a request whose context ctx is: when
// the client itself gave up, the error is its doing (499), not ours.
func classifyRequest(ctx context.Context, err error) (int, string) {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return StatusClientClosedRequest, "client closed request"
	}
	return classify(err)
}

func classify(err error) (int, string) {
	var he *echo.HTTPError
	var re *report.Error
	var mbe *http.MaxBytesError
	var le *statestore.LimitError
	switch {
	case errors.As(err, &le):
		return http.StatusTooManyRequests, le.Error() + "; raise the limit in the coordinator's config (limits:) or flags, or delete breakers no longer used"
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit)
	case errors.As(err, &re):
		return http.StatusBadRequest, re.Error()
	case errors.Is(err, statestore.ErrInvalidName), errors.Is(err, statestore.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, coordinator.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, statestore.ErrUnavailable):
		return http.StatusServiceUnavailable, "state store unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request cancelled or timed out"
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return he.Code, msg
	default:
		return http.StatusInternalServerError, "internal error"
	}
}
