package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/fusebox-io/fusebox/provider"
)

// request is one inbound request: the body as received, its top-level
// members, and what the sidecar reads from it. Each provider gets the
// body as is (its model replaced), or translated (provider/).
type request struct {
	api  API
	body []byte
	raw  map[string]json.RawMessage

	model  string
	stream bool
	// includeUsage: chat's stream_options.include_usage.
	includeUsage bool
	// maxTokens the request asks for (max_completion_tokens, max_tokens,
	// max_output_tokens); 0 when none.
	maxTokens int64
	// stateful: a Responses request that continues a stored response or
	// conversation (previous_response_id, conversation), which only the
	// provider that stored it has.
	stateful bool
	// version and beta: the anthropic-version and anthropic-beta headers
	// of a messages request, passed on to Anthropic.
	version, beta string
	// needs is what the request needs of a provider, read only on routes
	// whose providers declare capabilities.
	needs needs
}

// requestError is a request the sidecar refuses before any provider sees
// it: a 400 naming the field (param).
type requestError struct{ msg, param string }

func (e *requestError) Error() string { return e.msg }

func refuse(param, format string, a ...any) error {
	return &requestError{msg: fmt.Sprintf(format, a...), param: param}
}

// parseRequest reads and checks an inbound body.
func parseRequest(api API, body []byte, h http.Header) (*request, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, refuse("", "the body must be a JSON object: a %s request", apiNoun(api))
	}
	r := &request{api: api, body: body, raw: raw}
	if err := json.Unmarshal(raw["model"], &r.model); err != nil || r.model == "" {
		return nil, refuse("model", "model: required, a string")
	}
	if api.streams() {
		if v, ok := raw["stream"]; ok && !isNull(v) {
			if err := json.Unmarshal(v, &r.stream); err != nil {
				return nil, refuse("stream", "stream: want a boolean")
			}
		}
	} else if v, ok := raw["stream"]; ok && !isNull(v) && string(v) != "false" {
		return nil, refuse("stream", "stream: %s are not streamed", apiNoun(api))
	}
	var err error
	switch api {
	case APIChat:
		err = r.parseChat()
	case APIMessages:
		err = r.parseMessages(h)
	case APIEmbeddings:
		if v, ok := raw["input"]; !ok || isNull(v) {
			err = refuse("input", "input: required: a string, an array of strings, or tokens")
		}
	case APIResponses:
		err = r.parseResponses()
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func apiNoun(api API) string {
	switch api {
	case APIMessages:
		return "Messages"
	case APIEmbeddings:
		return "embeddings"
	case APIResponses:
		return "Responses"
	}
	return "chat completions"
}

func (r *request) parseChat() error {
	var msgs []struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal(r.raw["messages"], &msgs); err != nil || len(msgs) == 0 {
		return refuse("messages", "messages: required, a non-empty array of {role, content}")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return refuse("messages", "messages[%d].role: %q is not a role", i, m.Role)
		}
	}
	if v, ok := r.raw["stream_options"]; ok && !isNull(v) {
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if err := json.Unmarshal(v, &so); err != nil {
			return refuse("stream_options", "stream_options: want an object")
		}
		r.includeUsage = so.IncludeUsage
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if v, ok := r.raw[k]; ok && !isNull(v) {
			n, ok := positiveInt(v)
			if !ok {
				return refuse(k, "%s: want a positive integer", k)
			}
			r.maxTokens = n
		}
	}
	for _, k := range []string{"temperature", "top_p"} {
		if v, ok := r.raw[k]; ok && !isNull(v) {
			var x float64
			if err := json.Unmarshal(v, &x); err != nil {
				return refuse(k, "%s: want a number", k)
			}
		}
	}
	if v, ok := r.raw["stop"]; ok && !isNull(v) {
		var one string
		var many []string
		if json.Unmarshal(v, &one) != nil && json.Unmarshal(v, &many) != nil {
			return refuse("stop", "stop: want a string or an array of strings")
		}
	}
	return nil
}

func (r *request) parseMessages(h http.Header) error {
	var msgs []json.RawMessage
	if err := json.Unmarshal(r.raw["messages"], &msgs); err != nil || len(msgs) == 0 {
		return refuse("messages", "messages: required, a non-empty array of {role, content}")
	}
	v, ok := r.raw["max_tokens"]
	if !ok || isNull(v) {
		return refuse("max_tokens", "max_tokens: Field required")
	}
	n, ok := wholeNumber(v)
	if !ok || n < 0 {
		return refuse("max_tokens", "max_tokens: want a non-negative integer")
	}
	r.maxTokens = n
	r.version, r.beta = h.Get("anthropic-version"), h.Get("anthropic-beta")
	if r.version == "" {
		r.version = provider.AnthropicVersion
	}
	return nil
}

func (r *request) parseResponses() error {
	if v, ok := r.raw["max_output_tokens"]; ok && !isNull(v) {
		n, ok := positiveInt(v)
		if !ok {
			return refuse("max_output_tokens", "max_output_tokens: want a positive integer")
		}
		r.maxTokens = n
	}
	for _, k := range []string{"previous_response_id", "conversation"} {
		if v, ok := r.raw[k]; ok && !isNull(v) && string(v) != `""` {
			r.stateful = true
		}
	}
	return nil
}

// withModel is the body with the provider's model, and the members in
// set replaced (a nil value deletes one).
func (r *request) withModel(model string, set map[string]json.RawMessage) []byte {
	out := make(map[string]json.RawMessage, len(r.raw)+len(set))
	for k, v := range r.raw {
		out[k] = v
	}
	out["model"], _ = json.Marshal(model)
	for k, v := range set {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out) // raw members are valid JSON: they were decoded from it
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func wholeNumber(v json.RawMessage) (int64, bool) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func positiveInt(v json.RawMessage) (int64, bool) {
	n, ok := wholeNumber(v)
	return n, ok && n >= 1
}
