package provider

import "encoding/json"

// Anthropic Messages API wire types, as this package writes them. Fields
// the package reads from Anthropic are decoded field by field from
// json.RawMessage, so that what it does not know is seen, not skipped.

// AnthropicVersion is the anthropic-version the sidecar sends, and the
// default of AnthropicOptions.Version: sampling parameters (temperature,
// top_p) are accepted.
const AnthropicVersion = "2023-06-01"

// AnthropicVersion20261021 is the API version the v2 SDKs send: it answers
// 400 to temperature, top_p and top_k, even at their defaults.
const AnthropicVersion20261021 = "2026-10-21"

type aRequest struct {
	Model         string       `json:"model"`
	MaxTokens     int64        `json:"max_tokens"`
	System        []aBlock     `json:"system,omitempty"`
	Messages      []aMessage   `json:"messages"`
	Metadata      *aMetadata   `json:"metadata,omitempty"`
	StopSequences []string     `json:"stop_sequences,omitempty"`
	Stream        bool         `json:"stream,omitempty"`
	Temperature   *float64     `json:"temperature,omitempty"`
	TopP          *float64     `json:"top_p,omitempty"`
	Tools         []aTool      `json:"tools,omitempty"`
	ToolChoice    *aToolChoice `json:"tool_choice,omitempty"`
}

type aMetadata struct {
	UserID string `json:"user_id"`
}

type aMessage struct {
	Role    string   `json:"role"`
	Content []aBlock `json:"content"`
}

// aBlock is any content block this package writes: text, image,
// tool_use, tool_result.
type aBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Source    *aSource        `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

func aText(s string) aBlock { return aBlock{Type: "text", Text: &s} }

type aSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type aTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

type aToolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type aResponse struct {
	ID           string   `json:"id"`
	Type         string   `json:"type"`
	Role         string   `json:"role"`
	Model        string   `json:"model"`
	Content      []aBlock `json:"content"`
	StopReason   *string  `json:"stop_reason"`
	StopSequence *string  `json:"stop_sequence"`
	Usage        aUsage   `json:"usage"`
}

type aUsage struct {
	InputTokens          int64  `json:"input_tokens"`
	CacheReadInputTokens *int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens         int64  `json:"output_tokens"`
}

// Stream events.

type aMessageStart struct {
	Type    string    `json:"type"`
	Message aResponse `json:"message"`
}

type aBlockStart struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock aBlock `json:"content_block"`
}

type aBlockDelta struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta aDelta `json:"delta"`
}

type aDelta struct {
	Type        string  `json:"type"` // text_delta, input_json_delta
	Text        *string `json:"text,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

type aBlockStop struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type aMessageDelta struct {
	Type  string         `json:"type"`
	Delta aMessageDeltaD `json:"delta"`
	Usage aUsage         `json:"usage"`
}

type aMessageDeltaD struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}
