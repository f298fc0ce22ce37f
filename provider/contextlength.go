package provider

import "strings"

// contextLengthHints are what the providers' 400s say when a prompt is
// longer than the model's context: OpenAI's code context_length_exceeded
// ("This model's maximum context length is 128000 tokens…"), Anthropic's
// "prompt is too long: 210000 tokens > 200000 maximum", and the
// OpenAI-compatible servers' variants (vLLM "maximum context length",
// Ollama and llama.cpp "exceeds the context", "context window").
var contextLengthHints = []string{
	"context_length_exceeded",
	"maximum context length",
	"context length",
	"context window",
	"exceeds the context",
	"prompt is too long",
}

// IsContextLengthError reports whether an error body (a 400's, in any
// provider's shape) says the prompt does not fit the model's context
// window: a request that a model with a larger window could still serve.
func IsContextLengthError(body []byte) bool {
	e := ParseError(body)
	if e.Shape == ShapeUnknown {
		return false
	}
	text := strings.ToLower(e.CodeString() + " " + e.Type + " " + e.Message)
	for _, h := range contextLengthHints {
		if strings.Contains(text, h) {
			return true
		}
	}
	return false
}
