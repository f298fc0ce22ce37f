package api

import (
	"embed"
	"mime"
	"net/http"
	"path"
	"regexp"

	"github.com/labstack/echo/v4"
)

//go:embed dashboard
var dashboardFS embed.FS

var assetName = regexp.MustCompile(`^[a-z0-9-]+\.(js|css|svg)$`)

// dashboard serves the live dashboard: a static page, no build step; it
// reads the API with the token the operator types in.
func (s *Server) dashboard(c echo.Context) error {
	page, err := dashboardFS.ReadFile("dashboard/index.html")
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	return c.HTMLBlob(http.StatusOK, page)
}

func (s *Server) asset(c echo.Context) error {
	name := c.Param("file")
	if !assetName.MatchString(name) {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	b, err := dashboardFS.ReadFile("dashboard/" + name)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
	return c.Blob(http.StatusOK, mime.TypeByExtension(path.Ext(name)), b)
}
