// Package provider owns the wire facts of the LLM providers fusebox sits in
// front of (OpenAI, Anthropic, Ollama and OpenAI-compatible servers) and
// the translation between OpenAI's Chat Completions and Anthropic's
// Messages API, in both directions, bodies and streams alike.
//
// Wire facts: error bodies in each provider's shape (ParseError, and
// OpenAIErrorBody and AnthropicErrorBody to answer in one), the mapping
// between HTTP statuses and Anthropic's error types, Retry-After and
// retry-after-ms (RetryAfter), and the rate-limit headers, read as "the
// provider's limits are exhausted for this long" (Exhausted), which a
// caller treats like a Retry-After.
//
// Translation: OpenAIToAnthropicRequest and AnthropicToOpenAIResponse let
// an OpenAI client be served by Anthropic; AnthropicToOpenAIRequest and
// OpenAIToAnthropicResponse let an Anthropic client be served by OpenAI;
// AnthropicToOpenAIStream and OpenAIToAnthropicStream do the same for
// server-sent event streams, one incoming event in, the outgoing events
// out.
//
// The package does no I/O: it never dials a provider, reads an
// environment variable or sees an API key, and it keeps no state but a
// stream translator's. It never drops a request field that changes the
// answer: what has no faithful counterpart on the other side is refused
// with an *UntranslatableError naming the field, and the few fields that
// cannot change the answer (seed, store, cache hints) are left out and
// listed in Request.Dropped. A stream that fails or stops short always
// ends in an error, never in a normal finish.
package provider
