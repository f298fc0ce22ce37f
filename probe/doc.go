// Package probe holds the canary probes a coordinator runs when a breaker
// is half-open: a generic HTTP check, and tiny requests in the OpenAI,
// Anthropic and Ollama wire formats ("Respond with OK" on a small model).
//
// A canary only answers "healthy or not, and why"; it never changes
// breaker state (the coordinator reports its result through statestore)
// and never retries. API keys come only from environment variables named
// in the spec; they are sent in request headers and never appear in a
// Result, an error or a log line.
package probe
