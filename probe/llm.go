package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/fusebox-io/fusebox/provider"
)

type openAICanary struct {
	spec   Spec
	key    string
	client *http.Client
}

func (c *openAICanary) Timeout() time.Duration { return c.spec.Timeout }

// Probe asks POST {base}/chat/completions for a tiny answer; healthy is a
// 200 with a non-empty message.
func (c *openAICanary) Probe(ctx context.Context) Result {
	body, _ := json.Marshal(map[string]any{
		"model":                 c.spec.Model,
		"messages":              []map[string]string{{"role": "user", "content": c.spec.Prompt}},
		"max_completion_tokens": c.spec.MaxTokens,
		"stream":                false,
	})
	headers := map[string]string{"Content-Type": "application/json"}
	if c.key != "" {
		headers["Authorization"] = "Bearer " + c.key
	}
	return do(ctx, c.client, c.spec.Timeout, http.MethodPost, c.spec.URL+"/chat/completions", headers, bytes.NewReader(body), func(status int, b []byte) (bool, string) {
		if status != http.StatusOK {
			return false, describe(status, b)
		}
		var r struct {
			Choices []struct {
				Message struct {
					Content *string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return false, "HTTP 200 with a body that is not a chat completion"
		}
		if len(r.Choices) == 0 || r.Choices[0].Message.Content == nil || strings.TrimSpace(*r.Choices[0].Message.Content) == "" {
			return false, "HTTP 200 with an empty message"
		}
		return true, ""
	})
}

type anthropicCanary struct {
	spec   Spec
	key    string
	client *http.Client
}

func (c *anthropicCanary) Timeout() time.Duration { return c.spec.Timeout }

// Probe asks POST {base}/v1/messages for a tiny answer; healthy is a 200
// with a non-empty text block.
func (c *anthropicCanary) Probe(ctx context.Context) Result {
	body, _ := json.Marshal(map[string]any{
		"model":      c.spec.Model,
		"max_tokens": c.spec.MaxTokens,
		"messages":   []map[string]string{{"role": "user", "content": c.spec.Prompt}},
	})
	headers := map[string]string{
		"Content-Type":      "application/json",
		"x-api-key":         c.key,
		"anthropic-version": provider.AnthropicVersion,
	}
	return do(ctx, c.client, c.spec.Timeout, http.MethodPost, c.spec.URL+"/v1/messages", headers, bytes.NewReader(body), func(status int, b []byte) (bool, string) {
		if status != http.StatusOK {
			return false, describe(status, b)
		}
		var r struct {
			Type    string `json:"type"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Type != "message" {
			return false, "HTTP 200 with a body that is not a message"
		}
		for _, blk := range r.Content {
			if blk.Type == "text" && strings.TrimSpace(blk.Text) != "" {
				return true, ""
			}
		}
		return false, "HTTP 200 with an empty message"
	})
}

type ollamaCanary struct {
	spec   Spec
	client *http.Client
}

func (c *ollamaCanary) Timeout() time.Duration { return c.spec.Timeout }

// Probe lists models (GET /api/tags), or with a model asks /api/chat for
// a tiny non-streamed answer.
func (c *ollamaCanary) Probe(ctx context.Context) Result {
	if c.spec.Model == "" {
		return do(ctx, c.client, c.spec.Timeout, http.MethodGet, c.spec.URL+"/api/tags", nil, nil, func(status int, b []byte) (bool, string) {
			if status != http.StatusOK {
				return false, describe(status, b)
			}
			var r struct {
				Models *[]json.RawMessage `json:"models"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Models == nil {
				return false, "HTTP 200 with a body that is not a model list"
			}
			return true, ""
		})
	}
	body, _ := json.Marshal(map[string]any{
		"model":    c.spec.Model,
		"messages": []map[string]string{{"role": "user", "content": c.spec.Prompt}},
		"stream":   false,
		"options":  map[string]int{"num_predict": c.spec.MaxTokens},
	})
	return do(ctx, c.client, c.spec.Timeout, http.MethodPost, c.spec.URL+"/api/chat", map[string]string{"Content-Type": "application/json"}, bytes.NewReader(body), func(status int, b []byte) (bool, string) {
		if status != http.StatusOK {
			return false, describe(status, b)
		}
		var r struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return false, "HTTP 200 with a body that is not a chat response"
		}
		if r.Error != "" {
			return false, "HTTP 200 with an error: " + clip(r.Error)
		}
		if strings.TrimSpace(r.Message.Content) == "" {
			return false, "HTTP 200 with an empty message"
		}
		return true, ""
	})
}
