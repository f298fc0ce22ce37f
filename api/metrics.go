package api

import (
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) initMetrics(extra []prometheus.Collector) {
	s.registry = prometheus.NewRegistry()
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_http_requests_total",
		Help: "HTTP requests served, by route, method and status.",
	}, []string{"route", "method", "status"})
	s.registry.MustRegister(s.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.registry.MustRegister(extra...)
}

// countRequests counts every request by its route template, so the
// counter's size is bounded by the route table, not by what clients send.
func (s *Server) countRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status, _ = classifyRequest(c.Request().Context(), err)
		}
		route := c.Path()
		if route == "" || c.Response().Status == 404 && err != nil {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		return err
	}
}

func (s *Server) metrics(c echo.Context) error {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(c.Response(), c.Request())
	return nil
}
