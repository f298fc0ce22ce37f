package logging

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
)

// RouteOTel sends OpenTelemetry's own lines into log with
// component=otel: its internal logger (otel.SetLogger; by default plain
// text on stderr) and its error handler (otel.SetErrorHandler; by default
// the standard logger), whose errors are the ones the SDK could not
// handle, such as spans it failed to export. Pass the logger without a
// component key. The OTel globals are process-wide: the last call wins
// (internal/telemetry sets a more specific error handler when tracing is
// on).
//
// Levels: the SDK's warnings (logr V(1)) at warn; its info (V(4): a
// provider's whole configuration as it starts) at debug; its debug at
// trace; its errors at error. The values a line carries go under
// "details"; those of a line about headers are replaced by xxxxx (they
// hold tokens), and a URL's credentials are removed.
func RouteOTel(log zerolog.Logger) {
	l := log.With().Str("component", "otel").Logger()
	otel.SetLogger(logr.New(&otelSink{log: l}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		l.Warn().Err(err).Msg("opentelemetry: an error the SDK could not handle")
	}))
}

// otelSink is a logr.LogSink writing to zerolog.
type otelSink struct {
	log    zerolog.Logger
	name   string
	values []any // from WithValues, before each line's own
}

var _ logr.LogSink = (*otelSink)(nil)

// otelLevel maps logr's verbosity, as OTel uses it, to zerolog's.
func otelLevel(v int) zerolog.Level {
	switch {
	case v <= 1:
		return zerolog.WarnLevel
	case v <= 4:
		return zerolog.DebugLevel
	}
	return zerolog.TraceLevel
}

func (s *otelSink) Init(logr.RuntimeInfo) {}

func (s *otelSink) Enabled(level int) bool {
	l := otelLevel(level)
	return l >= s.log.GetLevel() && l >= zerolog.GlobalLevel()
}

func (s *otelSink) Info(level int, msg string, kv ...any) {
	s.emit(s.log.WithLevel(otelLevel(level)), msg, kv)
}

func (s *otelSink) Error(err error, msg string, kv ...any) {
	s.emit(s.log.Error().Err(err), msg, kv)
}

func (s *otelSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(slices.Clip(s.values), kv...)
	return &c
}

func (s *otelSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		name = c.name + "/" + name
	}
	c.name = name
	return &c
}

func (s *otelSink) emit(e *zerolog.Event, msg string, kv []any) {
	if e == nil {
		return
	}
	if msg == "" {
		msg = "opentelemetry"
	}
	if s.name != "" {
		e = e.Str("logger", s.name)
	}
	all := append(slices.Clip(s.values), kv...)
	if len(all) > 0 {
		d := zerolog.Dict()
		secret := strings.Contains(strings.ToLower(msg), "header")
		for i := 0; i < len(all); i += 2 {
			key := fmt.Sprint(all[i])
			var v any = "(missing)"
			if i+1 < len(all) {
				v = all[i+1]
			}
			switch {
			case secret:
				v = Redacted
			case strings.Contains(strings.ToLower(msg), "url"):
				v = RedactURL(fmt.Sprint(v))
			}
			d = d.Interface(key, v)
		}
		e = e.Dict("details", d)
	}
	e.Msg("opentelemetry: " + msg)
}
