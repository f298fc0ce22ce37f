package provider

import "encoding/json"

// OpenAI Chat Completions wire types, as this package writes them.

type oRequest struct {
	Model               string          `json:"model"`
	Messages            []oMessage      `json:"messages"`
	MaxCompletionTokens int64           `json:"max_completion_tokens,omitempty"`
	MaxTokens           int64           `json:"max_tokens,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *oStreamOptions `json:"stream_options,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Tools               []oTool         `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	User                string          `json:"user,omitempty"`
}

type oStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type oMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"` // a string, parts, or null
	ToolCalls  []oToolCall     `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type oPart struct {
	Type     string     `json:"type"` // text, image_url
	Text     *string    `json:"text,omitempty"`
	ImageURL *oImageURL `json:"image_url,omitempty"`
}

type oImageURL struct {
	URL string `json:"url"`
}

type oToolCall struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Function oFunction `json:"function"`
}

type oFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type oTool struct {
	Type     string       `json:"type"`
	Function oFunctionDef `json:"function"`
}

type oFunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type oNamedToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type oResponse struct {
	ID      string    `json:"id"`
	Object  string    `json:"object"`
	Created int64     `json:"created"`
	Model   string    `json:"model"`
	Choices []oChoice `json:"choices"`
	Usage   *oUsage   `json:"usage,omitempty"`
}

type oChoice struct {
	Index        int             `json:"index"`
	Message      oRespMessage    `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type oRespMessage struct {
	Role      string      `json:"role"`
	Content   *string     `json:"content"`
	Refusal   *string     `json:"refusal"`
	ToolCalls []oToolCall `json:"tool_calls,omitempty"`
}

type oUsage struct {
	PromptTokens        int64          `json:"prompt_tokens"`
	CompletionTokens    int64          `json:"completion_tokens"`
	TotalTokens         int64          `json:"total_tokens"`
	PromptTokensDetails *oPromptDetail `json:"prompt_tokens_details,omitempty"`
}

type oPromptDetail struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type oChunk struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []oChunkChoice `json:"choices"`
	Usage   *oUsage        `json:"usage,omitempty"`
}

type oChunkChoice struct {
	Index        int             `json:"index"`
	Delta        oDelta          `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type oDelta struct {
	Role      string           `json:"role,omitempty"`
	Content   *string          `json:"content,omitempty"`
	ToolCalls []oToolCallDelta `json:"tool_calls,omitempty"`
}

type oToolCallDelta struct {
	Index    int            `json:"index"`
	ID       string         `json:"id,omitempty"`
	Type     string         `json:"type,omitempty"`
	Function oFunctionDelta `json:"function"`
}

type oFunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

var jsonNull = json.RawMessage("null")
