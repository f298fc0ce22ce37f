package sidecar_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

// TestSidecar_OfficialOpenAIClient: openai-go, unchanged but for its base
// URL (and its own retries off, as behind any breaker), works against the
// sidecar, streaming included, fallback included.
func TestSidecar_OfficialOpenAIClient(t *testing.T) {
	r := newRig(t, "defaults:\n  consecutive_failures: 5\n  open_timeout: 1m\n", 1, defaultRoutes)
	client := openai.NewClient(option.WithBaseURL(r.sidecars[0].url+"/v1/"), option.WithAPIKey("unused-by-the-sidecar"), option.WithMaxRetries(0))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Say hello")},
	}

	t.Run("a completion", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Message.Content != fakeprovider.Reply || c.Choices[0].FinishReason != "stop" || c.Usage.CompletionTokens == 0 {
			t.Fatalf("completion %+v", c)
		}
	})
	stream := func(t *testing.T) (string, string, error) {
		t.Helper()
		s := client.Chat.Completions.NewStreaming(ctx, params)
		acc := openai.ChatCompletionAccumulator{}
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if len(acc.Choices) == 0 {
			return "", "", s.Err()
		}
		return acc.Choices[0].Message.Content, string(acc.Choices[0].FinishReason), s.Err()
	}
	t.Run("a stream", func(t *testing.T) {
		text, finish, err := stream(t)
		if err != nil || text != fakeprovider.Reply || finish != "stop" {
			t.Fatalf("stream %q %q %v", text, finish, err)
		}
	})
	t.Run("a stream from the Anthropic fallback, translated", func(t *testing.T) {
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Times: 1}); err != nil {
			t.Fatal(err)
		}
		text, finish, err := stream(t)
		if err != nil || text != fakeprovider.Reply || finish != "stop" {
			t.Fatalf("translated stream %q %q %v", text, finish, err)
		}
		if r.fp.Calls("anthropic") != 1 {
			t.Fatalf("anthropic calls = %d", r.fp.Calls("anthropic"))
		}
	})
	t.Run("a stream that breaks mid-way is an error to the client", func(t *testing.T) {
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamCut, CutAfter: 3, Times: 1}); err != nil {
			t.Fatal(err)
		}
		text, _, err := stream(t)
		if err == nil {
			t.Fatalf("a cut stream finished normally with %q", text)
		}
	})
	t.Run("the model list", func(t *testing.T) {
		if _, err := client.Models.List(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a 503 with every provider down is an API error with Retry-After", func(t *testing.T) {
		for _, p := range fakeprovider.Providers {
			if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
		defer r.fp.Reset()
		_, err := client.Chat.Completions.New(ctx, params)
		var apiErr *openai.Error
		if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
			t.Fatalf("err = %v", err)
		}
	})
}
