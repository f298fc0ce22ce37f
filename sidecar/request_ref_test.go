package sidecar

// The request reading as it was before it read bodies where they lie
// (jsonscan.go): every body decoded into a map, messages into structs,
// the needs from the body decoded into any, the provider's body the map
// encoded again. FuzzRequestReading holds the reading to it.

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"

	"github.com/fusebox-io/fusebox/provider"
)

type refRequest struct {
	api  API
	body []byte
	raw  map[string]json.RawMessage

	model         string
	stream        bool
	includeUsage  bool
	maxTokens     int64
	stateful      bool
	version, beta string
}

func refWholeNumber(v json.RawMessage) (int64, bool) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func refPositiveInt(v json.RawMessage) (int64, bool) {
	n, ok := refWholeNumber(v)
	return n, ok && n >= 1
}

// parseRequest reads and checks an inbound body.
func refParseRequest(api API, body []byte, h http.Header) (*refRequest, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, refuse("", "the body must be a JSON object: a %s request", apiNoun(api))
	}
	r := &refRequest{api: api, body: body, raw: raw}
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

func (r *refRequest) parseChat() error {
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
			n, ok := refPositiveInt(v)
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

func (r *refRequest) parseMessages(h http.Header) error {
	var msgs []json.RawMessage
	if err := json.Unmarshal(r.raw["messages"], &msgs); err != nil || len(msgs) == 0 {
		return refuse("messages", "messages: required, a non-empty array of {role, content}")
	}
	v, ok := r.raw["max_tokens"]
	if !ok || isNull(v) {
		return refuse("max_tokens", "max_tokens: Field required")
	}
	n, ok := refWholeNumber(v)
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

func (r *refRequest) parseResponses() error {
	if v, ok := r.raw["max_output_tokens"]; ok && !isNull(v) {
		n, ok := refPositiveInt(v)
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
func (r *refRequest) withModel(model string, set map[string]json.RawMessage) []byte {
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

// scanNeeds reads what the request needs: tools (it offers tools or
// carries tool calls or results), vision (image parts or blocks), JSON
// mode (response_format or text.format json_object or json_schema), and
// its estimated size in tokens. It walks the decoded body once; a
// request too deep or odd to walk needs nothing but its size.
func (r *refRequest) scanNeeds() needs {
	var n needs
	var v any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	imageBytes := 0
	images := 0
	if dec.Decode(&v) == nil {
		w := refWalker{n: &n, imageBytes: &imageBytes, images: &images}
		w.walk(v, 0)
		top, _ := v.(map[string]any)
		if arr, ok := top["tools"].([]any); ok && len(arr) > 0 {
			n.tools = true
		}
		if arr, ok := top["functions"].([]any); ok && len(arr) > 0 {
			n.tools = true
		}
		format := top["response_format"]
		if t, ok := top["text"].(map[string]any); ok {
			format = t["format"]
		}
		if f, ok := format.(map[string]any); ok {
			if t, _ := f["type"].(string); t == "json_object" || t == "json_schema" {
				n.jsonMode = true
			}
		}
	}
	n.vision = images > 0
	n.tokens = int64(max(len(r.body)-imageBytes, 0)/bytesPerToken) + int64(images)*imageTokens + r.maxTokens
	return n
}

type refWalker struct {
	n          *needs
	imageBytes *int
	images     *int
}

func (w refWalker) walk(v any, depth int) {
	if depth > maxDepth {
		return
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.walk(e, depth+1)
		}
	case map[string]any:
		typ, _ := x["type"].(string)
		switch typ {
		case "image_url", "image", "input_image":
			*w.images++
			*w.imageBytes += refDataBytes(x)
		case "tool_use", "tool_result", "function_call", "function_call_output":
			w.n.tools = true
		}
		if role, _ := x["role"].(string); role == "tool" {
			w.n.tools = true
		}
		if calls, ok := x["tool_calls"].([]any); ok && len(calls) > 0 {
			w.n.tools = true
		}
		for _, e := range x {
			w.walk(e, depth+1)
		}
	}
}

// dataBytes is the size of an image part's inline data: an OpenAI data
// URL (image_url.url, or a Responses image_url string) or an Anthropic
// base64 source.
func refDataBytes(part map[string]any) int {
	n := 0
	if u, ok := part["image_url"].(string); ok && strings.HasPrefix(u, "data:") {
		n += len(u)
	}
	if iu, ok := part["image_url"].(map[string]any); ok {
		if u, _ := iu["url"].(string); strings.HasPrefix(u, "data:") {
			n += len(u)
		}
	}
	if src, ok := part["source"].(map[string]any); ok {
		if d, _ := src["data"].(string); d != "" {
			n += len(d)
		}
	}
	return n
}
