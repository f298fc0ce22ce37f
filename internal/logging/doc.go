// Package logging builds the one zerolog logger each fusebox command
// writes with: --log-level and --log-format (env FUSEBOX_LOG_LEVEL,
// FUSEBOX_LOG_FORMAT), RFC 3339 timestamps with milliseconds, JSON by
// default. It routes go-redis's own log lines into that logger, and
// redacts the credentials of URLs before they are logged.
//
// It never adds a component key: each command adds its own, once, so
// that a library that adds its own (agentlib adds component=agent) is
// given the logger without one.
package logging
