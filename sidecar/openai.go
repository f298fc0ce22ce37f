package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// chatRequest is an OpenAI chat completions request: the fields the
// sidecar reads, and the raw object it forwards.
type chatRequest struct {
	raw          map[string]json.RawMessage
	Model        string
	Stream       bool
	IncludeUsage bool
	Messages     []message
	MaxTokens    *int
	Temperature  *float64
	TopP         *float64
	Stop         []string
	User         string
	HasTools     bool
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// requestError is a request the sidecar refuses before any provider sees it.
type requestError struct{ msg, param string }

func (e *requestError) Error() string { return e.msg }

// parseChatRequest reads and checks a chat completions body.
func parseChatRequest(body []byte) (*chatRequest, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, &requestError{msg: "the body must be a JSON object: a chat completions request"}
	}
	r := &chatRequest{raw: raw}
	if err := json.Unmarshal(raw["model"], &r.Model); err != nil || r.Model == "" {
		return nil, &requestError{msg: "model: required, a string", param: "model"}
	}
	if err := json.Unmarshal(raw["messages"], &r.Messages); err != nil || len(r.Messages) == 0 {
		return nil, &requestError{msg: "messages: required, a non-empty array of {role, content}", param: "messages"}
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return nil, &requestError{msg: fmt.Sprintf("messages[%d].role: %q is not a role", i, m.Role), param: "messages"}
		}
	}
	if v, ok := raw["stream"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &r.Stream); err != nil {
			return nil, &requestError{msg: "stream: want a boolean", param: "stream"}
		}
	}
	if v, ok := raw["stream_options"]; ok && string(v) != "null" {
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if err := json.Unmarshal(v, &so); err != nil {
			return nil, &requestError{msg: "stream_options: want an object", param: "stream_options"}
		}
		r.IncludeUsage = so.IncludeUsage
	}
	for _, k := range []string{"max_completion_tokens", "max_tokens"} {
		if v, ok := raw[k]; ok && string(v) != "null" {
			var n int
			if err := json.Unmarshal(v, &n); err != nil || n < 1 {
				return nil, &requestError{msg: k + ": want a positive integer", param: k}
			}
			if r.MaxTokens == nil {
				r.MaxTokens = &n
			}
		}
	}
	for _, f := range []struct {
		k   string
		dst **float64
	}{{"temperature", &r.Temperature}, {"top_p", &r.TopP}} {
		if v, ok := raw[f.k]; ok && string(v) != "null" {
			var x float64
			if err := json.Unmarshal(v, &x); err != nil {
				return nil, &requestError{msg: f.k + ": want a number", param: f.k}
			}
			*f.dst = &x
		}
	}
	if v, ok := raw["stop"]; ok && string(v) != "null" {
		var one string
		if json.Unmarshal(v, &one) == nil {
			r.Stop = []string{one}
		} else if err := json.Unmarshal(v, &r.Stop); err != nil {
			return nil, &requestError{msg: "stop: want a string or an array of strings", param: "stop"}
		}
	}
	if v, ok := raw["user"]; ok {
		_ = json.Unmarshal(v, &r.User)
	}
	_, tools := raw["tools"]
	_, fns := raw["functions"]
	r.HasTools = tools || fns
	return r, nil
}

// forOpenAI is the body sent to an OpenAI-compatible provider: the
// client's request with the provider's model. Ollama takes max_tokens,
// not max_completion_tokens.
func (r *chatRequest) forOpenAI(model string, kind Kind) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(r.raw))
	for k, v := range r.raw {
		out[k] = v
	}
	m, _ := json.Marshal(model)
	out["model"] = m
	if kind == KindOllama {
		if v, ok := out["max_completion_tokens"]; ok {
			delete(out, "max_completion_tokens")
			if _, has := out["max_tokens"]; !has {
				out["max_tokens"] = v
			}
		}
	}
	return json.Marshal(out)
}

// textOf flattens a message content (a string, or an array of parts) to
// its text.
func textOf(c json.RawMessage) (string, error) {
	if len(c) == 0 || string(c) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(c, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return "", errors.New("content: want a string or an array of parts")
	}
	var b bytes.Buffer
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

// openAIErrorBody is an error in OpenAI's shape.
func openAIErrorBody(msg, typ, code, param string) []byte {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

// chunk is one chat.completion.chunk.
func chunk(id, model string, created int64, delta map[string]any, finish *string) []byte {
	var fr any
	if finish != nil {
		fr = *finish
	}
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": fr}},
	})
	return b
}

func now() int64 { return time.Now().Unix() }
