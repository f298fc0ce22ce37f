// Package config reads the coordinator's YAML config file: the default
// breaker policy and per-breaker policies. It resolves every breaker's
// policy field by field (built-in defaults, then `defaults:`, then the
// breaker's own entry) and validates it, so a bad file fails at start with
// the field and the reason. It never touches Redis.
package config
