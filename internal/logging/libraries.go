package logging

import (
	stdlog "log"
	"strings"

	"github.com/rs/zerolog"
)

// RouteLibraries sends the log lines of the libraries a command links,
// which they would otherwise print as plain text on stderr, into log
// (pass the logger without a component key): go-redis's (RouteRedis),
// OpenTelemetry's (RouteOTel) and whatever writes to the standard
// library's default logger (RouteStdLog). Each is process-wide: the
// last call wins. Give each http.Server HTTPErrorLog as well.
func RouteLibraries(log zerolog.Logger) {
	RouteRedis(log)
	RouteOTel(log)
	RouteStdLog(log)
}

// RouteStdLog sends the standard library's default logger (log.Printf:
// net/http's servers without an ErrorLog, libraries that print) to log
// at warn, one line each, with component=log.
func RouteStdLog(log zerolog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetPrefix("")
	stdlog.SetOutput(lineWriter{log: log.With().Str("component", "log").Logger(), level: zerolog.WarnLevel})
}

// HTTPErrorLog is an http.Server's ErrorLog: each line it writes (a
// handler's panic, a TLS handshake error, a superfluous WriteHeader) goes
// to log at warn, with component=net/http. Pass the logger without a
// component key.
func HTTPErrorLog(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(lineWriter{log: log.With().Str("component", "net/http").Logger(), level: zerolog.WarnLevel}, "", 0)
}

// lines splits p into its non-empty lines, trimmed.
func lines(p []byte) []string {
	var out []string
	for _, line := range strings.Split(string(p), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
