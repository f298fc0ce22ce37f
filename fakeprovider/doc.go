// Package fakeprovider is an LLM provider for tests, benchmarks and demos:
// a real HTTP server that speaks OpenAI's chat completions, Anthropic's
// Messages API and Ollama's native and OpenAI-compatible APIs, streaming
// and not, including each one's error bodies, Retry-After and rate-limit
// headers and broken streams; tool calls (OpenAI tool_calls, Anthropic
// tool_use, streamed and not) when a request offers tools, embeddings
// (OpenAI's and Ollama's /v1/embeddings), OpenAI's Responses API and each
// provider's model list. It checks the tool-call bookkeeping each
// provider checks (a tool result answers a call made just before), so a
// translation that loses a call or its result fails as it would there.
//
// Each provider lives under its own path prefix (/openai, /anthropic,
// /ollama), so one server stands in for all three. A control API under
// /_control schedules faults per provider (an error status, Retry-After,
// added latency, a hang until the client gives up, a connection reset, a
// stream cut mid-way, a quota error) and counts the calls each provider
// received. It is not a model: it answers a fixed text.
package fakeprovider
