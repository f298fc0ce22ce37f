package logging_test

import (
	"context"
	"errors"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/internal/logging/logtest"
)

// find returns the lines of component c.
func find(lines []logtest.Line, c string) []logtest.Line {
	var out []logtest.Line
	for _, l := range lines {
		if l.Str("component") == c {
			out = append(out, l)
		}
	}
	return out
}

// TestHTTPErrorLog: a real server's complaint (a handler that writes its
// status twice) comes out as a JSON warning, not a line of text.
func TestHTTPErrorLog(t *testing.T) {
	sink := &logtest.Sink{}
	log, _ := logging.New(sink, logging.Config{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ErrorLog = logging.HTTPErrorLog(log)
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := find(logtest.Lines(t, sink.String()), "net/http")
	if len(lines) != 1 || lines[0].Str("level") != "warn" || !strings.Contains(lines[0].Str("message"), "superfluous response.WriteHeader") {
		t.Fatalf("net/http lines %v in:\n%s", lines, sink)
	}
}

// TestRouteOTel makes the OTel SDK log for real: the exporter reading
// variables it cannot parse, and an error given to the handler. Every
// line is JSON, a header's value never appears.
func TestRouteOTel(t *testing.T) {
	const secret = "otlp-token-never-log-me-61"
	sink := &logtest.Sink{}
	log, _ := logging.New(sink, logging.Config{})
	logging.RouteOTel(log)
	t.Cleanup(func() { logging.RouteOTel(zerologNop()) })
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%zz"+secret)
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = exp.Shutdown(context.Background())
	otel.Handle(errors.New("export failed: collector away"))

	lines := find(logtest.Lines(t, sink.String()), "otel")
	var timeout, header, handled logtest.Line
	for _, l := range lines {
		switch {
		case strings.Contains(l.Str("message"), "parse duration"):
			timeout = l
		case strings.Contains(l.Str("message"), "header"):
			header = l
		case strings.Contains(l.Str("error"), "collector away"):
			handled = l
		}
	}
	if timeout == nil || timeout.Str("level") != "error" || !strings.Contains(sink.String(), `"input":"soon"`) {
		t.Fatalf("the exporter's parse error %v in:\n%s", timeout, sink)
	}
	if header == nil || header.Str("level") != "error" {
		t.Fatalf("the exporter's header error %v in:\n%s", header, sink)
	}
	if handled == nil || handled.Str("level") != "warn" {
		t.Fatalf("the handled error %v in:\n%s", handled, sink)
	}
	if strings.Contains(sink.String(), secret) {
		t.Fatalf("a header's value reached the log:\n%s", sink)
	}
}

func TestRouteStdLog(t *testing.T) {
	sink := &logtest.Sink{}
	log, _ := logging.New(sink, logging.Config{})
	logging.RouteStdLog(log)
	t.Cleanup(func() { logging.RouteStdLog(zerologNop()) })
	stdlog.Printf("a library speaks\nin two lines")
	lines := find(logtest.Lines(t, sink.String()), "log")
	if len(lines) != 2 || lines[0].Str("message") != "a library speaks" || lines[1].Str("level") != "warn" {
		t.Fatalf("lines %v", lines)
	}
}
