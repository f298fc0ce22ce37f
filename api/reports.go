package api

import (
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/report"
)

// postReport applies an agent's outcome batch and answers with the current
// state of the breakers it names.
func (s *Server) postReport(c echo.Context) error {
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "want Content-Type: application/json")
	}
	rep, err := report.DecodeValid(c.Request().Body)
	if err != nil {
		return err
	}
	states, err := s.d.Ingest(c.Request().Context(), rep)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, report.Response{Breakers: states})
}

// postPermit asks for a traffic-mode half-open window's permit on an
// agent's behalf: agents need no Redis write access.
func (s *Server) postPermit(c echo.Context) error {
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "want Content-Type: application/json")
	}
	req, err := report.DecodePermit(c.Request().Body)
	if err != nil {
		return err
	}
	ans, err := s.d.Permit(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ans)
}
