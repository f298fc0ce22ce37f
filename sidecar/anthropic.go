package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// errUntranslatable marks a request Anthropic cannot be asked (tools,
// function calling): the provider is skipped, not failed.
var errUntranslatable = errors.New("request cannot be translated for Anthropic")

// toAnthropic translates an OpenAI chat request into a Messages API body:
// system and developer messages become the top-level system prompt,
// max_tokens is required (the request's, or the provider's default),
// temperature is clamped to 1, stop becomes stop_sequences, user becomes
// metadata.user_id.
func toAnthropic(r *chatRequest, model string, defaultMax int) ([]byte, error) {
	if r.HasTools {
		return nil, fmt.Errorf("%w: tools and function calling are passed to OpenAI-compatible providers only", errUntranslatable)
	}
	var system []string
	var msgs []map[string]any
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer":
			t, err := textOf(m.Content)
			if err != nil {
				return nil, &requestError{msg: fmt.Sprintf("messages[%d].%v", i, err), param: "messages"}
			}
			system = append(system, t)
		case "user", "assistant":
			content, err := anthropicContent(m.Content)
			if err != nil {
				return nil, &requestError{msg: fmt.Sprintf("messages[%d].%v", i, err), param: "messages"}
			}
			msgs = append(msgs, map[string]any{"role": m.Role, "content": content})
		default:
			return nil, fmt.Errorf("%w: role %q", errUntranslatable, m.Role)
		}
	}
	if len(msgs) == 0 {
		return nil, &requestError{msg: "messages: at least one user or assistant message is required", param: "messages"}
	}
	body := map[string]any{"model": model, "messages": msgs}
	maxTokens := defaultMax
	if r.MaxTokens != nil {
		maxTokens = *r.MaxTokens
	}
	body["max_tokens"] = maxTokens
	if len(system) > 0 {
		body["system"] = strings.Join(system, "\n\n")
	}
	if r.Temperature != nil {
		body["temperature"] = math.Min(math.Max(*r.Temperature, 0), 1)
	}
	if r.TopP != nil {
		body["top_p"] = *r.TopP
	}
	if len(r.Stop) > 0 {
		body["stop_sequences"] = r.Stop
	}
	if r.Stream {
		body["stream"] = true
	}
	if r.User != "" {
		body["metadata"] = map[string]string{"user_id": r.User}
	}
	return json.Marshal(body)
}

// anthropicContent maps OpenAI content (a string, or text and image parts)
// to Anthropic's.
func anthropicContent(c json.RawMessage) (any, error) {
	var s string
	if err := json.Unmarshal(c, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return nil, errors.New("content: want a string or an array of parts")
	}
	var out []map[string]any
	for _, p := range parts {
		switch p.Type {
		case "text":
			out = append(out, map[string]any{"type": "text", "text": p.Text})
		case "image_url":
			u := p.ImageURL.URL
			if rest, ok := strings.CutPrefix(u, "data:"); ok {
				mediaType, data, found := strings.Cut(rest, ";base64,")
				if !found {
					return nil, errors.New("content: an image data URL must be base64")
				}
				out = append(out, map[string]any{"type": "image", "source": map[string]string{"type": "base64", "media_type": mediaType, "data": data}})
			} else {
				out = append(out, map[string]any{"type": "image", "source": map[string]string{"type": "url", "url": u}})
			}
		default:
			return nil, fmt.Errorf("%w: content part %q", errUntranslatable, p.Type)
		}
	}
	return out, nil
}

// finishReason maps Anthropic's stop reasons to OpenAI's.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

type anthropicMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

// fromAnthropic translates a Messages API response into an OpenAI chat
// completion.
func fromAnthropic(body []byte) ([]byte, error) {
	var m anthropicMessage
	if err := json.Unmarshal(body, &m); err != nil || m.Type != "message" {
		return nil, errors.New("anthropic answered 200 with a body that is not a message")
	}
	var text strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			text.WriteString(c.Text)
		}
	}
	return json.Marshal(map[string]any{
		"id": "chatcmpl-" + m.ID, "object": "chat.completion", "created": now(), "model": m.Model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text.String()},
			"finish_reason": finishReason(m.StopReason), "logprobs": nil}},
		"usage": map[string]int{"prompt_tokens": m.Usage.InputTokens, "completion_tokens": m.Usage.OutputTokens,
			"total_tokens": m.Usage.InputTokens + m.Usage.OutputTokens},
	})
}

// anthropicStream turns Anthropic's stream events into OpenAI chunks.
type anthropicStream struct {
	id, model     string
	created       int64
	includeUsage  bool
	inputTokens   int
	outputTokens  int
	finish        string
	started, done bool
}

// streamError is a stream that failed after it began.
type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

// event handles one named event; it returns the chunks (JSON) to send and
// whether the stream is complete ([DONE] follows).
func (s *anthropicStream) event(name string, data []byte) ([][]byte, bool, error) {
	switch name {
	case "message_start":
		var ev struct {
			Message anthropicMessage `json:"message"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, false, &streamError{"anthropic: bad message_start"}
		}
		s.id, s.model, s.created = "chatcmpl-"+ev.Message.ID, ev.Message.Model, now()
		s.inputTokens = ev.Message.Usage.InputTokens
		s.started = true
		return [][]byte{chunk(s.id, s.model, s.created, map[string]any{"role": "assistant", "content": ""}, nil)}, false, nil
	case "content_block_delta":
		var ev struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, false, &streamError{"anthropic: bad content_block_delta"}
		}
		if ev.Delta.Type != "text_delta" || ev.Delta.Text == "" {
			return nil, false, nil
		}
		return [][]byte{chunk(s.id, s.model, s.created, map[string]any{"content": ev.Delta.Text}, nil)}, false, nil
	case "message_delta":
		var ev struct {
			Delta struct {
				StopReason string `json:"stop_reason"`
			} `json:"delta"`
			Usage struct {
				OutputTokens int `json:"output_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, false, &streamError{"anthropic: bad message_delta"}
		}
		s.finish = finishReason(ev.Delta.StopReason)
		s.outputTokens = ev.Usage.OutputTokens
		return nil, false, nil
	case "message_stop":
		if s.finish == "" {
			s.finish = "stop"
		}
		out := [][]byte{chunk(s.id, s.model, s.created, map[string]any{}, &s.finish)}
		if s.includeUsage {
			u, _ := json.Marshal(map[string]any{"id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.model, "choices": []any{},
				"usage": map[string]int{"prompt_tokens": s.inputTokens, "completion_tokens": s.outputTokens, "total_tokens": s.inputTokens + s.outputTokens}})
			out = append(out, u)
		}
		s.done = true
		return out, true, nil
	case "error":
		var ev struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &ev)
		return nil, false, &streamError{fmt.Sprintf("anthropic stream error: %s: %s", ev.Error.Type, ev.Error.Message)}
	default: // ping, content_block_start, content_block_stop
		return nil, false, nil
	}
}
