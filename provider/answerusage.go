package provider

import (
	"bytes"
	"encoding/json"
)

// AnswerUsage is the model and the token counts a provider's answer
// reports, as it sent them, for a trace or a log: read from a whole
// answer, or merged from a stream's events one at a time. Input counts
// every input token, Anthropic's cache reads and writes included (its
// input_tokens leaves them out); OpenAI's prompt_tokens already includes
// its cached tokens.
type AnswerUsage struct {
	Model               string
	Input, Output       int64
	HasInput, HasOutput bool // the answer said so
}

// usageDoc reads the model and usage wherever the providers put them: at
// the top (OpenAI's answers and chunks, Anthropic's answer and
// message_delta, a Responses answer, an embeddings answer), in message
// (Anthropic's message_start) or in response (the Responses API's stream
// events).
type usageDoc struct {
	Model    string      `json:"model"`
	Usage    *usageCount `json:"usage"`
	Message  *usageInner `json:"message"`
	Response *usageInner `json:"response"`
}

type usageInner struct {
	Model string      `json:"model"`
	Usage *usageCount `json:"usage"`
}

type usageCount struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
	CacheRead        int64  `json:"cache_read_input_tokens"`
	CacheCreation    int64  `json:"cache_creation_input_tokens"`
}

// Read merges what data (an answer, or one stream event's data) says: the
// first model named is kept, each count read replaces the one before
// (Anthropic's message_delta repeats its counts cumulatively). It
// returns false when data is not a JSON object.
func (u *AnswerUsage) Read(data []byte) bool {
	var d usageDoc
	if json.Unmarshal(data, &d) != nil {
		return false
	}
	top := usageInner{Model: d.Model, Usage: d.Usage}
	for _, in := range [...]*usageInner{&top, d.Message, d.Response} {
		if in == nil {
			continue
		}
		if in.Model != "" && u.Model == "" {
			u.Model = in.Model
		}
		if c := in.Usage; c != nil {
			switch {
			case c.InputTokens != nil:
				u.Input, u.HasInput = *c.InputTokens+c.CacheRead+c.CacheCreation, true
			case c.PromptTokens != nil:
				u.Input, u.HasInput = *c.PromptTokens, true
			}
			switch {
			case c.OutputTokens != nil:
				u.Output, u.HasOutput = *c.OutputTokens, true
			case c.CompletionTokens != nil:
				u.Output, u.HasOutput = *c.CompletionTokens, true
			}
		}
	}
	return true
}

// HasUsageObject reports whether data has a "usage" member that is an
// object, without decoding it: a cheap test of which stream events are
// worth reading (OpenAI's chunks say "usage":null until the last one).
func HasUsageObject(data []byte) bool {
	for rest := data; ; {
		i := bytes.Index(rest, []byte(`"usage"`))
		if i < 0 {
			return false
		}
		rest = rest[i+len(`"usage"`):]
		j := 0
		for j < len(rest) && (rest[j] == ' ' || rest[j] == ':' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r') {
			j++
		}
		if j < len(rest) && rest[j] == '{' {
			return true
		}
	}
}
