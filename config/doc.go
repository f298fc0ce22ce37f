// Package config reads the coordinator's YAML config file: the default
// breaker policy and per-breaker policies. It resolves every breaker's
// policy field by field (built-in defaults, then `defaults:`, then the
// breaker's own entry) and validates it, so a bad file fails at start with
// the field and the reason. It also reads the API tokens (auth:) and the
// limits on what agents may make the cluster keep (limits:). It never
// touches Redis. A loaded Config is read only, safe for concurrent use;
// every other type is a plain value.
package config
