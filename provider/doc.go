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
// caller treats like a Retry-After. The Responses API's stream events
// (ResponsesStreamError, ResponsesStreamDone), the model lists of
// GET /v1/models (ParseModelList), and the model and token counts an
// answer reports (AnswerUsage) are read here too.
//
// What an answer says of the provider, the table callers classify
// outcomes by (the sidecar's classifyStatus; ParseError reads the body):
//
//	connection refused or reset, a DNS or TLS   unwell: a failure; next provider
//	error, a connect or first-byte timeout
//	408, 429 rate limit, 500, 502 (an HTML      unwell: a failure; next provider; a
//	page too), 503, 504, Anthropic's 529        Retry-After (or Exhausted) says for
//	                                            how long
//	429 insufficient_quota, 402 billing_error   out of quota or credit: a failure
//	                                            that lasts; next provider
//	401, 403                                    the key or its permissions: the
//	                                            account's configuration, not an
//	                                            outage; next provider
//	404                                         the model: configuration; counts
//	                                            against nothing; next provider
//	400 (the context length too), 413, 422      the request's fault: the caller's
//	                                            answer; counts against nothing
//	a stream's error event, a stream cut off    a failure (an error event of a 4xx
//	before its end marker                       type: the request's fault); next
//	                                            provider while nothing was sent
//	the caller cancelled                        nothing
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
