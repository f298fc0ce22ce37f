package provider

import (
	"encoding/json"
	"fmt"
	"strings"
)

// OpenAIToAnthropicResponse translates an OpenAI chat completion (a 200's
// body) into an Anthropic Messages response: the content becomes a text
// block, a refusal a text block with stop_reason refusal, tool_calls
// tool_use blocks (the arguments string parsed into the input object, ids
// kept), the finish_reason a stop_reason (AnthropicStopReason), and usage
// input tokens (prompt tokens less the cached ones, which become
// cache_read_input_tokens) and output tokens. The id becomes "msg_" + the
// completion id (a "chatcmpl-msg_…" id gives its "msg_…" back).
//
// More than one choice, audio, annotations or tool-call arguments that are
// not a JSON object are an *UntranslatableError.
func OpenAIToAnthropicResponse(body []byte) ([]byte, error) {
	var r struct {
		ID      string            `json:"id"`
		Object  string            `json:"object"`
		Model   string            `json:"model"`
		Choices []json.RawMessage `json:"choices"`
		Usage   json.RawMessage   `json:"usage"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Object != "chat.completion" {
		return nil, invalid("", "not an OpenAI chat completion")
	}
	if len(r.Choices) != 1 {
		return nil, untranslatable("choices", "an Anthropic message is one answer, not %d", len(r.Choices))
	}
	var c struct {
		Message struct {
			Content     *string           `json:"content"`
			Refusal     *string           `json:"refusal"`
			ToolCalls   []json.RawMessage `json:"tool_calls"`
			Audio       json.RawMessage   `json:"audio"`
			Annotations json.RawMessage   `json:"annotations"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	}
	if err := json.Unmarshal(r.Choices[0], &c); err != nil {
		return nil, invalid("choices[0]", "want {message, finish_reason}")
	}
	if !isNull(c.Message.Audio) {
		return nil, untranslatable("choices[0].message.audio", "Anthropic answers in text only")
	}
	if !isNull(c.Message.Annotations) && string(c.Message.Annotations) != "[]" {
		return nil, untranslatable("choices[0].message.annotations", "Anthropic's citations are another shape")
	}
	if c.FinishReason == nil {
		return nil, invalid("choices[0].finish_reason", "a complete answer has one")
	}
	stop, ok := AnthropicStopReason(*c.FinishReason)
	if !ok {
		return nil, untranslatable("choices[0].finish_reason", "%q has no Anthropic stop_reason", *c.FinishReason)
	}
	content := []aBlock{}
	if t := c.Message.Content; t != nil && *t != "" {
		content = append(content, aText(*t))
	}
	if t := c.Message.Refusal; t != nil && *t != "" {
		content = append(content, aText(*t))
		stop = "refusal"
	}
	for j, tc := range c.Message.ToolCalls {
		b, err := anthropicToolUse(tc, fmt.Sprintf("choices[0].message.tool_calls[%d]", j))
		if err != nil {
			return nil, err
		}
		content = append(content, b)
	}
	var t tokens
	if !isNull(r.Usage) {
		var err error
		if t, err = tokensFromOpenAI(r.Usage, "usage"); err != nil {
			return nil, err
		}
	}
	return marshal(aResponse{
		ID: anthropicMessageID(r.ID), Type: "message", Role: "assistant", Model: r.Model,
		Content: content, StopReason: &stop, Usage: t.anthropic(),
	}), nil
}

// anthropicToolUse translates one OpenAI tool call of a response.
func anthropicToolUse(raw json.RawMessage, field string) (aBlock, error) {
	var tc struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &tc); err != nil {
		return aBlock{}, invalid(field, "want a tool call")
	}
	if tc.Type != "function" {
		return aBlock{}, untranslatable(field+".type", "only function tool calls translate, not %q", tc.Type)
	}
	if tc.ID == "" || tc.Function.Name == "" {
		return aBlock{}, invalid(field, "a tool call needs an id and a function name")
	}
	input := json.RawMessage("{}")
	if strings.TrimSpace(tc.Function.Arguments) != "" {
		obj, ok := compactObject(json.RawMessage(tc.Function.Arguments))
		if !ok {
			return aBlock{}, untranslatable(field+".function.arguments", "not a JSON object, which Anthropic's tool_use input must be")
		}
		input = obj
	}
	return aBlock{Type: "tool_use", ID: anthropicToolID(tc.ID), Name: tc.Function.Name, Input: input}, nil
}
