// Package logging builds the one zerolog logger each fusebox command
// writes with: --log-level and --log-format (env FUSEBOX_LOG_LEVEL,
// FUSEBOX_LOG_FORMAT), RFC 3339 timestamps with milliseconds, JSON by
// default. It routes the lines libraries would print as text on stderr
// into that logger (go-redis's, OpenTelemetry's internal logger and error
// handler, the standard library's default logger, and each http.Server's
// ErrorLog), and redacts the credentials of URLs before they are logged.
//
// It never adds a component key: each command adds its own, once, so
// that a library that adds its own (agentlib adds component=agent) is
// given the logger without one.
package logging
