// Package fakeprovider is an LLM provider for tests, benchmarks and demos:
// a real HTTP server that speaks OpenAI's chat completions, Anthropic's
// Messages API and Ollama's native and OpenAI-compatible APIs, streaming
// and not, including each one's error bodies, Retry-After headers and
// broken streams.
//
// Each provider lives under its own path prefix (/openai, /anthropic,
// /ollama), so one server stands in for all three. A control API under
// /_control schedules faults per provider (an error status, Retry-After,
// added latency, a hang until the client gives up, a connection reset, a
// stream cut mid-way, a quota error) and counts the calls each provider
// received. It is not a model: it answers a fixed text.
package fakeprovider
