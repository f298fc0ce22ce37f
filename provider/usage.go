package provider

import "encoding/json"

// Token counts. Anthropic's input_tokens leaves out the tokens read from
// and written to its prompt cache; OpenAI's prompt_tokens includes its
// cached tokens, and says how many in prompt_tokens_details.cached_tokens.

// anthropicUsageIn is Anthropic usage as read: each count is present or
// not, since message_delta repeats only some of them.
type anthropicUsageIn struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

// tokens is a usage in neutral terms.
type tokens struct {
	prompt     int64 // every input token, cached or not
	cached     int64 // of which read from a cache
	hasCached  bool  // the provider said how many were cached
	completion int64
}

// anthropicCounts are Anthropic's counts as they stand; each one read
// replaces the one before (message_delta repeats them cumulatively).
type anthropicCounts struct {
	input, cacheCreation, cacheRead, output int64
	hasCacheRead                            bool
}

func (c *anthropicCounts) merge(u anthropicUsageIn) {
	if u.InputTokens != nil {
		c.input = *u.InputTokens
	}
	if u.CacheCreationInputTokens != nil {
		c.cacheCreation = *u.CacheCreationInputTokens
	}
	if u.CacheReadInputTokens != nil {
		c.cacheRead, c.hasCacheRead = *u.CacheReadInputTokens, true
	}
	if u.OutputTokens != nil {
		c.output = *u.OutputTokens
	}
}

// tokens: the prompt is input_tokens plus both cache counts.
func (c anthropicCounts) tokens() tokens {
	return tokens{prompt: c.input + c.cacheCreation + c.cacheRead, cached: c.cacheRead, hasCached: c.hasCacheRead, completion: c.output}
}

func (t tokens) openAI() *oUsage {
	u := &oUsage{PromptTokens: t.prompt, CompletionTokens: t.completion, TotalTokens: t.prompt + t.completion}
	if t.hasCached {
		u.PromptTokensDetails = &oPromptDetail{CachedTokens: t.cached}
	}
	return u
}

// openAIUsageIn is OpenAI usage as read.
type openAIUsageIn struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func tokensFromOpenAI(raw json.RawMessage, field string) (tokens, error) {
	var u openAIUsageIn
	if err := json.Unmarshal(raw, &u); err != nil {
		return tokens{}, invalid(field, "want a usage object")
	}
	t := tokens{prompt: u.PromptTokens, completion: u.CompletionTokens}
	if u.PromptTokensDetails != nil && u.PromptTokensDetails.CachedTokens != nil {
		t.cached, t.hasCached = *u.PromptTokensDetails.CachedTokens, true
	}
	return t, nil
}

func (t tokens) anthropic() aUsage {
	u := aUsage{InputTokens: max(t.prompt-t.cached, 0), OutputTokens: t.completion}
	if t.hasCached {
		c := t.cached
		u.CacheReadInputTokens = &c
	}
	return u
}
