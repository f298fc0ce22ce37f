package provider

import (
	"encoding/json"
	"slices"
)

// Request is a request body translated for the other provider.
type Request struct {
	Body  []byte
	Model string // the model the body asks for
	// Stream: the body asks for a stream.
	Stream bool
	// IncludeUsage: the client asked for token usage at the end of its
	// stream. From an OpenAI request, stream_options.include_usage: give
	// it to NewAnthropicToOpenAIStream. (Anthropic streams always carry
	// usage, and a translated Anthropic request always asks OpenAI for
	// it.)
	IncludeUsage bool
	// Dropped lists the fields left out because the other side has no
	// counterpart and they cannot change the answer (seed, store, cache
	// hints, image detail, is_error…), as JSON paths, for a log line.
	Dropped []string
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
