package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// Proof with the official OpenAI SDK (openai-go v3): what this package
// writes in OpenAI's format is read by the SDK's own client, and what the
// SDK sends is read by this package.

// answer starts a server that answers every request with status and body.
func answer(tb testing.TB, status int, contentType string, body []byte) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// capture starts a server that keeps the body of the request it gets and
// answers with body.
func capture(tb testing.TB, contentType string, body []byte) (*httptest.Server, *[]byte) {
	tb.Helper()
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv, &got
}

func openAIClient(url string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(url), option.WithAPIKey("test"), option.WithMaxRetries(0))
	return &c
}

var openAIParams = openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}

func TestOpenAISDK_ReadsTranslatedResponses(t *testing.T) {
	for _, tc := range []struct {
		in, content, args, finish string
		prompt, cached            int64
	}{
		{"anthropic_response_tool_use.json", "I'll get the current weather in San Francisco for you in Fahrenheit.", `{"city":"San Francisco","units":"fahrenheit"}`, "tool_calls", 402, 0},
		{"anthropic_response_end_turn.json", "The current temperature in San Francisco is 68 degrees Fahrenheit.", "", "stop", 514, 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			body, err := AnthropicToOpenAIResponse(readTestdata(t, tc.in), ResponseOptions{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			c, err := openAIClient(answer(t, 200, "application/json", body).URL).Chat.Completions.New(context.Background(), openAIParams)
			if err != nil {
				t.Fatal(err)
			}
			m := c.Choices[0].Message
			if m.Content != tc.content || string(c.Choices[0].FinishReason) != tc.finish || c.Usage.PromptTokens != tc.prompt ||
				!c.Usage.PromptTokensDetails.JSON.CachedTokens.Valid() || c.Usage.PromptTokensDetails.CachedTokens != tc.cached ||
				c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens || c.Created != 1741569952 || !strings.HasPrefix(c.ID, "chatcmpl-msg_") {
				t.Fatalf("%+v", c)
			}
			if tc.args != "" && (len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != tc.args || m.ToolCalls[0].ID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" || m.ToolCalls[0].Type != "function") {
				t.Fatalf("tool calls %+v", m.ToolCalls)
			}
		})
	}
}

func TestOpenAISDK_ReadsParallelToolUse(t *testing.T) {
	body, err := AnthropicToOpenAIResponse(readTestdata(t, "anthropic_response_parallel_tool_use.json"), ResponseOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openAIClient(answer(t, 200, "application/json", body).URL).Chat.Completions.New(context.Background(), openAIParams)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Choices[0].Message
	if c.Choices[0].FinishReason != "tool_calls" || !strings.HasPrefix(m.Content, "I'll use the test_tool twice") || len(m.ToolCalls) != 2 {
		t.Fatalf("%+v", c)
	}
	for i, want := range []struct{ id, args string }{{"toolu_01L8GVQapA1HmggQcrwboukH", `{"count":1}`}, {"toolu_01J5Fvzxu7DP1Uh59c1kr5JD", `{"count":2}`}} {
		tc := m.ToolCalls[i]
		if tc.ID != want.id || tc.Function.Name != "test_tool" || tc.Function.Arguments != want.args || tc.Type != "function" {
			t.Fatalf("tool call %d: %+v", i, tc)
		}
	}
}

func TestOpenAISDK_ReadsTranslatedStreams(t *testing.T) {
	for _, tc := range []struct {
		in, content, tool, args, finish string
		prompt, completion              int64
	}{
		{"anthropic_stream_tool_use.sse", "I'll get the current weather in San Francisco for you in Fahrenheit.", "get_weather", `{"city": "San Francisco", "units": "fahrenheit"}`, "tool_calls", 397, 89},
		{"anthropic_stream_refusal.sse", "Hi", "", "", "content_filter", 28, 106},
	} {
		t.Run(tc.in, func(t *testing.T) {
			body := sse(translateAnthropicStream(t, readTestdata(t, tc.in), StreamOptions{IncludeUsage: true, Clock: clock}))
			stream := openAIClient(answer(t, 200, "text/event-stream", body).URL).Chat.Completions.NewStreaming(context.Background(), openAIParams)
			var acc openai.ChatCompletionAccumulator
			chunks := 0
			for stream.Next() {
				if !acc.AddChunk(stream.Current()) {
					t.Fatalf("the accumulator refused chunk %d: %s", chunks, stream.Current().RawJSON())
				}
				chunks++
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			m := acc.Choices[0].Message
			if m.Content != tc.content || string(acc.Choices[0].FinishReason) != tc.finish || acc.Usage.PromptTokens != tc.prompt || acc.Usage.CompletionTokens != tc.completion {
				t.Fatalf("%d chunks: %+v", chunks, acc.ChatCompletion)
			}
			if tc.tool != "" && (len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != tc.tool || m.ToolCalls[0].Function.Arguments != tc.args) {
				t.Fatalf("tool calls %+v", m.ToolCalls)
			}
		})
	}
}

func TestOpenAISDK_SeesErrors(t *testing.T) {
	t.Run("an error event mid-stream is the stream's error", func(t *testing.T) {
		evs := translateAnthropicStream(t, readTestdata(t, "anthropic_stream_tool_use.sse"), StreamOptions{Clock: clock})
		body := sse(append(evs[:3:3], OpenAIErrorEvent("the provider's stream failed: overloaded_error", "fusebox_upstream_stream_error", "")))
		stream := openAIClient(answer(t, 200, "text/event-stream", body).URL).Chat.Completions.NewStreaming(context.Background(), openAIParams)
		n := 0
		for stream.Next() {
			n++
		}
		if stream.Err() == nil || n != 3 {
			t.Fatalf("%d chunks, err %v", n, stream.Err())
		}
	})
	t.Run("an Anthropic error in OpenAI's shape is an openai.Error", func(t *testing.T) {
		body := ToOpenAIError(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		_, err := openAIClient(answer(t, 529, "application/json", body).URL).Chat.Completions.New(context.Background(), openAIParams)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || apiErr.Type != "overloaded_error" || apiErr.Message != "Overloaded" {
			t.Fatalf("%v", err)
		}
	})
}

func TestOpenAISDK_ReadsTranslatedRequests(t *testing.T) {
	for _, in := range []string{"anthropic_request_tools.json", "anthropic_request_tool_result.json", "anthropic_request_stream.json"} {
		t.Run(in, func(t *testing.T) {
			r, err := AnthropicToOpenAIRequest(readTestdata(t, in), OpenAIOptions{Model: "gpt-4o-mini"})
			if err != nil {
				t.Fatal(err)
			}
			var p openai.ChatCompletionNewParams
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Model != "gpt-4o-mini" || p.MaxCompletionTokens.Value != 512 || len(p.Tools) != 1 || p.Tools[0].OfFunction == nil ||
				p.Tools[0].OfFunction.Function.Name != "get_weather" || p.Tools[0].OfFunction.Function.Parameters["type"] != "object" {
				t.Fatalf("%s", r.Body)
			}
			if u := p.Messages[0].OfUser; u == nil || !strings.Contains(u.Content.OfString.Value, "eather") {
				t.Fatalf("first message %s", r.Body)
			}
			if in == "anthropic_request_tool_result.json" {
				a, tool := p.Messages[1].OfAssistant, p.Messages[2].OfTool
				if a == nil || len(a.ToolCalls) != 1 || a.ToolCalls[0].OfFunction.ID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" ||
					a.ToolCalls[0].OfFunction.Function.Arguments != `{"city":"San Francisco","units":"fahrenheit"}` ||
					tool == nil || tool.ToolCallID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" || tool.Content.OfString.Value != "The weather in San Francisco is 68 degrees fahrenheit." {
					t.Fatalf("%s", r.Body)
				}
			}
			if in == "anthropic_request_stream.json" && (!r.Stream || !p.StreamOptions.IncludeUsage.Value) {
				t.Fatalf("%s", r.Body)
			}
		})
	}
}

// The SDK's own request, sent to a server that keeps it, translates.
func TestOpenAISDK_RequestTranslates(t *testing.T) {
	srv, got := capture(t, "application/json", readTestdata(t, "openai_response_functions.json"))
	params := openai.ChatCompletionNewParams{
		Model: "gpt-4.1-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.DeveloperMessage("You are a weather bot."),
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
				openai.TextContentPart("What is the weather where this photo was taken?"),
				openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/boardwalk.jpg"}),
			}),
			{OfAssistant: &openai.ChatCompletionAssistantMessageParam{ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: "call_abc123", Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "get_weather", Arguments: `{"location":"Madison, WI"}`}},
			}}}},
			openai.ToolMessage("Sunny, 21°C", "call_abc123"),
			openai.UserMessage("Thanks. And tomorrow?"),
		},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Description: openai.String("gets weather data"),
			Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"location": map[string]string{"type": "string"}}, "required": []string{"location"}},
			Strict:     openai.Bool(true),
		})},
		ToolChoice:          openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
		ParallelToolCalls:   openai.Bool(false),
		MaxCompletionTokens: openai.Int(200),
		Temperature:         openai.Float(0.2),
		User:                openai.String("user-1234"),
	}
	if _, err := openAIClient(srv.URL).Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	r, err := OpenAIToAnthropicRequest(*got, AnthropicOptions{Model: "claude-haiku-4-5"})
	if err != nil {
		t.Fatalf("%v\n%s", err, *got)
	}
	golden(t, "openai_sdk_request.to_anthropic.golden.json", pretty(t, r.Body))
}
