package provider

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ResponseOptions say how a response is written.
type ResponseOptions struct {
	// Clock stamps OpenAI's created field; nil is the wall clock.
	Clock Clock
}

// AnthropicToOpenAIResponse translates an Anthropic Messages response
// body (a 200's) into an OpenAI chat completion: text blocks become the
// content, tool_use blocks tool_calls (the input object as the arguments
// string, ids kept), the stop reason a finish_reason (OpenAIFinishReason),
// and usage prompt and completion tokens, with cache reads as
// prompt_tokens_details.cached_tokens. The id becomes "chatcmpl-" + the
// message id. Thinking blocks are left out (Chat Completions returns no
// reasoning text); any other block type, which only a server tool or
// citations would produce, is an *UntranslatableError.
func AnthropicToOpenAIResponse(body []byte, o ResponseOptions) ([]byte, error) {
	var m struct {
		ID         string            `json:"id"`
		Type       string            `json:"type"`
		Model      string            `json:"model"`
		Content    []json.RawMessage `json:"content"`
		StopReason *string           `json:"stop_reason"`
		Usage      anthropicUsageIn  `json:"usage"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Type != "message" {
		return nil, invalid("", "not an Anthropic message")
	}
	msg := oRespMessage{Role: "assistant"}
	var text strings.Builder
	hasText := false
	for i, c := range m.Content {
		f := fmt.Sprintf("content[%d]", i)
		b, err := anthropicBlockIn(c, f)
		if err != nil {
			return nil, err
		}
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = true
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, oToolCall{ID: b.ID, Type: "function", Function: oFunction{Name: b.Name, Arguments: string(b.Input)}})
		case "thinking", "redacted_thinking":
		default:
			return nil, untranslatable(f+".type", "Chat Completions has no %q content", b.Type)
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := text.String()
		msg.Content = &s // null beside tool calls, as OpenAI sends it
	}
	if m.StopReason == nil {
		return nil, invalid("stop_reason", "a complete message has one")
	}
	finish, ok := OpenAIFinishReason(*m.StopReason)
	if !ok {
		return nil, untranslatable("stop_reason", "%q has no OpenAI finish_reason", *m.StopReason)
	}
	var c anthropicCounts
	c.merge(m.Usage)
	return marshal(oResponse{
		ID: openAICompletionID(m.ID), Object: "chat.completion", Created: now(o.Clock).Unix(), Model: m.Model,
		Choices: []oChoice{{Index: 0, Message: msg, Logprobs: jsonNull, FinishReason: finish}},
		Usage:   c.tokens().openAI(),
	}), nil
}

// anthropicBlock is a content block as read.
type anthropicBlock struct {
	Type  string
	Text  string
	ID    string
	Name  string
	Input json.RawMessage // compacted
}

// anthropicBlockIn reads a response content block: text (without
// citations) and tool_use in full; other types by name only.
func anthropicBlockIn(raw json.RawMessage, field string) (anthropicBlock, error) {
	var b struct {
		Type      string          `json:"type"`
		Text      *string         `json:"text"`
		Citations json.RawMessage `json:"citations"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(raw, &b); err != nil || b.Type == "" {
		return anthropicBlock{}, invalid(field, "want a content block")
	}
	out := anthropicBlock{Type: b.Type, ID: b.ID, Name: b.Name}
	switch b.Type {
	case "text":
		if b.Text == nil {
			return out, invalid(field+".text", "required")
		}
		if !isNull(b.Citations) && string(b.Citations) != "[]" {
			return out, untranslatable(field+".citations", "Chat Completions has no citations")
		}
		out.Text = *b.Text
	case "tool_use":
		if b.ID == "" || b.Name == "" {
			return out, invalid(field, "a tool_use block needs an id and a name")
		}
		in, ok := compactObject(b.Input)
		if !ok {
			return out, invalid(field+".input", "want an object")
		}
		out.Input = in
	}
	return out, nil
}
