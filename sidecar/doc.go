// Package sidecar is the fusebox agent as a process: an OpenAI-compatible
// HTTP proxy (POST /v1/chat/completions, GET /v1/models) that walks a
// fallback chain of providers (OpenAI, Anthropic, Ollama, any
// OpenAI-compatible server), skips the ones whose cluster-wide breaker
// denies, classifies every outcome the way PROVIDERS.md's table says,
// reports it through agentlib, and moves on to the next provider on
// failure. It translates requests, responses and streams to and from
// Anthropic's Messages API, retries transient errors under a retry budget,
// and caches non-streamed answers in Redis.
//
// It never writes breaker state (agentlib reports to the coordinators),
// never logs an API key, and never answers a client with a fake normal
// finish: a stream that fails after its first byte ends with an error
// event and no [DONE].
package sidecar
