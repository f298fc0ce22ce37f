// Package sidecar is the fusebox agent as a process: an HTTP proxy that
// serves OpenAI's Chat Completions (POST /v1/chat/completions),
// Anthropic's Messages API (POST /v1/messages), embeddings (POST
// /v1/embeddings), OpenAI's Responses API (POST /v1/responses, passed
// through) and a merged model list (GET /v1/models). For each request it
// walks a route's fallback chain of providers (OpenAI, Anthropic, Ollama,
// any OpenAI-compatible server), passes over the ones that cannot serve
// the request (a capability they declare they lack, a request with no
// faithful translation for them) or whose cluster-wide breaker denies,
// classifies every outcome by the table in package provider's doc, reports it
// through agentlib, and moves on to the next provider on failure.
// Breakers are per provider, or per provider and model.
//
// Translation between the two chat APIs, error bodies, Retry-After and
// rate-limit headers are package provider's; this package decides what
// to do with them. It retries transient errors under a retry budget,
// hedges slow providers, and caches non-streamed answers in Redis.
//
// It never writes breaker state (agentlib reports to the coordinators),
// never logs an API key, never drops a request field that would change
// the answer, and never answers a client with a fake normal finish: a
// stream that fails after its first byte ends with an error event and no
// end marker.
package sidecar
