package sidecar_test

import (
	"context"
	"errors"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

// TestSidecar_OfficialClientsAcrossProviders: openai-go and
// anthropic-sdk-go, unchanged but for their base URL (and their own
// retries off, as behind any breaker), against the sidecar with their
// primary failing: the answers come from the other provider, tool calls
// and streams included.
func TestSidecar_OfficialClientsAcrossProviders(t *testing.T) {
	r := newRig(t, tablePolicy, 1, endpointRoutes)
	s := r.sidecars[0]
	ctx := context.Background()
	down := func(t *testing.T, p string) {
		t.Helper()
		r.fp.Reset()
		if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
			t.Fatal(err)
		}
	}

	oa := openai.NewClient(option.WithBaseURL(s.url+"/v1/"), option.WithAPIKey("unused-by-the-sidecar"), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Weather in Paris?")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Description: openai.String("The weather now"),
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		})},
	}

	t.Run("openai-go: chat with tools, from Anthropic", func(t *testing.T) {
		down(t, "openai")
		c, err := oa.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		calls := c.Choices[0].Message.ToolCalls
		if c.Choices[0].FinishReason != "tool_calls" || len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"fake"}` {
			t.Fatalf("completion %+v", c.Choices[0])
		}
		next := params
		next.Messages = append(append([]openai.ChatCompletionMessageParamUnion{}, params.Messages...), c.Choices[0].Message.ToParam(), openai.ToolMessage("18 degrees", calls[0].ID))
		final, err := oa.Chat.Completions.New(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if final.Choices[0].Message.Content != fakeprovider.ToolAnswer("18 degrees") || final.Choices[0].FinishReason != "stop" || r.fp.Calls("anthropic") != 2 {
			t.Fatalf("final %+v", final.Choices[0])
		}
	})

	t.Run("openai-go: streamed tool calls, from Anthropic", func(t *testing.T) {
		down(t, "openai")
		st := oa.Chat.Completions.NewStreaming(ctx, params)
		acc := openai.ChatCompletionAccumulator{}
		var finished []openai.FinishedChatCompletionToolCall
		for st.Next() {
			acc.AddChunk(st.Current())
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc)
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		calls := acc.Choices[0].Message.ToolCalls
		if acc.Choices[0].FinishReason != "tool_calls" || len(calls) != 1 || calls[0].Function.Arguments != `{"city":"fake"}` ||
			len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != `{"city":"fake"}` {
			t.Fatalf("streamed %+v, finished %+v", acc.Choices[0], finished)
		}
	})

	t.Run("openai-go: embeddings, from Ollama", func(t *testing.T) {
		down(t, "openai")
		e, err := oa.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}})
		if err != nil {
			t.Fatal(err)
		}
		want := fakeprovider.Embedding("llama3.2:1b", "hello", fakeprovider.DefaultDimensions)
		if len(e.Data) != 1 || len(e.Data[0].Embedding) != len(want) || float32(e.Data[0].Embedding[0]) != want[0] || r.fp.Calls("ollama") != 1 {
			t.Fatalf("embeddings %+v", e)
		}
	})

	ac := anthropic.NewClient(aoption.WithBaseURL(s.url), aoption.WithAPIKey("unused-by-the-sidecar"), aoption.WithMaxRetries(0))
	aparams := anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 300,
		System:   []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	}

	t.Run("anthropic-sdk-go: a message, from OpenAI", func(t *testing.T) {
		down(t, "anthropic")
		m, err := ac.Messages.New(ctx, aparams)
		if err != nil {
			t.Fatal(err)
		}
		if m.StopReason != anthropic.StopReasonEndTurn || len(m.Content) != 1 || m.Content[0].Text != fakeprovider.Reply || m.Usage.OutputTokens == 0 || r.fp.Calls("openai") != 1 {
			t.Fatalf("message %+v", m)
		}
	})

	t.Run("anthropic-sdk-go: a stream, from OpenAI", func(t *testing.T) {
		down(t, "anthropic")
		st := ac.Messages.NewStreaming(ctx, aparams)
		acc := anthropic.Message{}
		for st.Next() {
			if err := acc.Accumulate(st.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.StopReason != anthropic.StopReasonEndTurn || len(acc.Content) != 1 || acc.Content[0].Text != fakeprovider.Reply {
			t.Fatalf("stream %+v", acc)
		}
	})

	t.Run("anthropic-sdk-go: tools, streamed and not, from OpenAI", func(t *testing.T) {
		down(t, "anthropic")
		tp := aparams
		tp.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))}
		tp.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather", Description: anthropic.String("The weather now"),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}}}}}
		m, err := ac.Messages.New(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		if m.StopReason != anthropic.StopReasonToolUse || len(m.Content) != 1 {
			t.Fatalf("message %+v", m)
		}
		tu := m.Content[0].AsToolUse()
		if tu.Name != "get_weather" || string(tu.Input) != `{"city":"fake"}` {
			t.Fatalf("tool use %+v", tu)
		}
		next := tp
		next.Messages = append(append([]anthropic.MessageParam{}, tp.Messages...), m.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(tu.ID, "18 degrees", false)))
		final, err := ac.Messages.New(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if final.StopReason != anthropic.StopReasonEndTurn || final.Content[0].Text != fakeprovider.ToolAnswer("18 degrees") {
			t.Fatalf("final %+v", final)
		}
		st := ac.Messages.NewStreaming(ctx, tp)
		acc := anthropic.Message{}
		for st.Next() {
			if err := acc.Accumulate(st.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.StopReason != anthropic.StopReasonToolUse || len(acc.Content) != 1 || acc.Content[0].AsToolUse().Name != "get_weather" || string(acc.Content[0].AsToolUse().Input) != `{"city":"fake"}` {
			t.Fatalf("streamed %+v", acc)
		}
	})

	t.Run("anthropic-sdk-go: every provider down is an overloaded_error with Retry-After", func(t *testing.T) {
		for _, p := range fakeprovider.Providers {
			if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
		defer r.fp.Reset()
		_, err := ac.Messages.New(ctx, aparams)
		var ae *anthropic.Error
		if err == nil || !errors.As(err, &ae) || ae.StatusCode != 529 || ae.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("anthropic-sdk-go: the model list", func(t *testing.T) {
		page, err := ac.Models.List(ctx, anthropic.ModelListParams{})
		if err != nil || len(page.Data) == 0 {
			t.Fatalf("%v %+v", err, page)
		}
	})
}
