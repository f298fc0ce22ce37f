package provider

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	anthropicshared "github.com/anthropics/anthropic-sdk-go/shared"
	"github.com/openai/openai-go/v3"
	openaishared "github.com/openai/openai-go/v3/shared"
)

// Proof with the official Anthropic SDK (anthropic-sdk-go v1, which sends
// anthropic-version 2023-06-01 as the sidecar does): what this package
// writes in Anthropic's format is read by the SDK's own client, and what
// the SDK sends is read by this package.

func anthropicClient(url string) *anthropic.Client {
	c := anthropic.NewClient(option.WithBaseURL(url), option.WithAPIKey("test"), option.WithMaxRetries(0))
	return &c
}

var anthropicParams = anthropic.MessageNewParams{
	Model: "claude-haiku-4-5", MaxTokens: 100,
	Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
}

func TestAnthropicSDK_ReadsTranslatedRequests(t *testing.T) {
	t.Run("tool calls and their results", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest(readTestdata(t, "openai_request_tool_result.json"), AnthropicOptions{Model: "claude-haiku-4-5"})
		if err != nil {
			t.Fatal(err)
		}
		var p anthropic.MessageNewParams
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.MaxTokens != 300 || len(p.System) != 1 || p.System[0].Text != "You are a helpful assistant." || len(p.Messages) != 3 {
			t.Fatalf("%s", r.Body)
		}
		tu := p.Messages[1].Content[0].OfToolUse
		if p.Messages[1].Role != anthropic.MessageParamRoleAssistant || tu == nil || tu.ID != "call_abc123" || tu.Input.(map[string]any)["location"] != "Boston, MA" {
			t.Fatalf("tool use %s", r.Body)
		}
		res := p.Messages[2].Content
		if p.Messages[2].Role != anthropic.MessageParamRoleUser || len(res) != 3 || res[0].OfToolResult == nil || res[0].OfToolResult.ToolUseID != "call_abc123" ||
			res[1].OfToolResult == nil || res[1].OfToolResult.Content[0].OfText.Text != "18 degrees celsius" || res[2].OfText == nil {
			t.Fatalf("tool results %s", r.Body)
		}
		tool := p.Tools[0].OfTool
		if tool == nil || tool.Name != "get_current_weather" || tool.InputSchema.Required[0] != "location" || !tool.Strict.Value ||
			p.ToolChoice.OfTool == nil || p.ToolChoice.OfTool.Name != "get_current_weather" || !p.ToolChoice.OfTool.DisableParallelToolUse.Value {
			t.Fatalf("tools %s", r.Body)
		}
	})
	t.Run("images, sampling, stop, user", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest(readTestdata(t, "openai_request_images.json"), AnthropicOptions{Model: "claude-haiku-4-5"})
		if err != nil {
			t.Fatal(err)
		}
		var p anthropic.MessageNewParams
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		img := p.Messages[2].Content
		if p.Temperature.Value != 1 || p.TopP.Value != 0.9 || p.StopSequences[0] != "END" || p.Metadata.UserID.Value != "user-42" ||
			img[1].OfImage == nil || img[1].OfImage.Source.OfURL == nil || img[2].OfImage.Source.OfBase64 == nil || img[2].OfImage.Source.OfBase64.Data != "iVBORw0KGgo=" {
			t.Fatalf("%s", r.Body)
		}
	})
}

func TestAnthropicSDK_ReadsTranslatedResponses(t *testing.T) {
	for _, tc := range []struct {
		in, text, tool, stop string
		input, cached        int64
	}{
		{"openai_response_functions.json", "", "get_current_weather", "tool_use", 82, -1},
		{"openai_response_default.json", "Hello! How can I assist you today?", "", "end_turn", 19, 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			body, err := OpenAIToAnthropicResponse(readTestdata(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			m, err := anthropicClient(answer(t, 200, "application/json", body).URL).Messages.New(context.Background(), anthropicParams)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.StopReason) != tc.stop || m.Usage.InputTokens != tc.input || !strings.HasPrefix(m.ID, "msg_") || m.Role != "assistant" {
				t.Fatalf("%s", m.RawJSON())
			}
			if tc.cached >= 0 && (!m.Usage.JSON.CacheReadInputTokens.Valid() || m.Usage.CacheReadInputTokens != tc.cached) {
				t.Fatalf("cache %s", m.RawJSON())
			}
			for _, b := range m.Content {
				switch b := b.AsAny().(type) {
				case anthropic.TextBlock:
					if b.Text != tc.text {
						t.Fatalf("text %q", b.Text)
					}
				case anthropic.ToolUseBlock:
					var in map[string]string
					if b.Name != tc.tool || b.ID != "call_abc123" || json.Unmarshal(b.Input, &in) != nil || in["location"] != "Boston, MA" {
						t.Fatalf("tool use %s", b.RawJSON())
					}
				default:
					t.Fatalf("block %T", b)
				}
			}
		})
	}
}

// accumulate reads a stream with the Anthropic SDK's client and
// accumulates it as the SDK documents.
func accumulate(t *testing.T, body []byte) anthropic.Message {
	t.Helper()
	stream := anthropicClient(answer(t, 200, "text/event-stream", body).URL).Messages.NewStreaming(context.Background(), anthropicParams)
	var m anthropic.Message
	for stream.Next() {
		if err := m.Accumulate(stream.Current()); err != nil {
			t.Fatalf("accumulate %s: %v", stream.Current().RawJSON(), err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAnthropicSDK_ReadsTranslatedStreams(t *testing.T) {
	t.Run("openai-go's tool-call stream", func(t *testing.T) {
		m := accumulate(t, sse(translateOpenAIStream(t, readTestdata(t, "openai_stream_tool_calls.sse"))))
		if len(m.Content) != 2 || m.Content[0].Text != "Let's take a journey to" || m.Content[1].Name != "get_weather" ||
			string(m.Content[1].Input) != `{"location":"Santorini, Greece"}` || m.StopReason != "tool_use" || m.Usage.OutputTokens != 100 || m.Usage.CacheReadInputTokens != 20 {
			t.Fatalf("%s", m.RawJSON())
		}
	})
	t.Run("openai-python's recorded stream of two parallel tool calls", func(t *testing.T) {
		m := accumulate(t, sse(translateOpenAIStream(t, readTestdata(t, "openai_stream_parallel_tool_calls.sse"))))
		if len(m.Content) != 2 || m.StopReason != "tool_use" || m.Usage.InputTokens != 149 || m.Usage.OutputTokens != 60 {
			t.Fatalf("%s", m.RawJSON())
		}
		for i, want := range []struct{ id, name, input string }{
			{"call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", `{"city": "Edinburgh", "country": "GB", "units": "c"}`},
			{"call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", `{"ticker": "AAPL", "exchange": "NASDAQ"}`},
		} {
			b := m.Content[i]
			var got, exp any
			if b.Type != "tool_use" || b.ID != want.id || b.Name != want.name || json.Unmarshal(b.Input, &got) != nil || json.Unmarshal([]byte(want.input), &exp) != nil || !jsonEqual(got, exp) {
				t.Fatalf("block %d: %s", i, b.RawJSON())
			}
		}
	})
	t.Run("the spec's text stream", func(t *testing.T) {
		m := accumulate(t, sse(translateOpenAIStream(t, readTestdata(t, "openai_stream_text.sse"))))
		if len(m.Content) != 1 || m.Content[0].Text != "Hello" || m.StopReason != "end_turn" || m.ID != "msg_chatcmpl-123" {
			t.Fatalf("%s", m.RawJSON())
		}
	})
}

// A stream translated to the other format and back reads, in each SDK,
// as the original does.
func TestSDKs_StreamRoundTrips(t *testing.T) {
	for _, in := range []string{"anthropic_stream_tool_use.sse", "anthropic_stream_refusal.sse"} {
		t.Run(in, func(t *testing.T) {
			orig := readTestdata(t, in)
			via := sse(translateOpenAIStream(t, sse(translateAnthropicStream(t, orig, StreamOptions{IncludeUsage: true}))))
			want, got := accumulate(t, orig), accumulate(t, via)
			var wantBlocks []anthropic.ContentBlockUnion
			for _, b := range want.Content {
				if b.Type != "thinking" { // Chat Completions carries no thinking
					wantBlocks = append(wantBlocks, b)
				}
			}
			if len(got.Content) != len(wantBlocks) || got.StopReason != want.StopReason || got.Usage.InputTokens != want.Usage.InputTokens || got.Usage.OutputTokens != want.Usage.OutputTokens {
				t.Fatalf("got %s\nwant %s", got.RawJSON(), want.RawJSON())
			}
			for i, b := range got.Content {
				w := wantBlocks[i]
				var gi, wi any
				_ = json.Unmarshal(b.Input, &gi)
				_ = json.Unmarshal(w.Input, &wi)
				if b.Type != w.Type || b.Text != w.Text || b.ID != w.ID || b.Name != w.Name || !jsonEqual(gi, wi) {
					t.Fatalf("block %d: got %s, want %s", i, b.RawJSON(), w.RawJSON())
				}
			}
		})
	}
	for _, in := range []string{"openai_stream_tool_calls.sse", "openai_stream_text.sse", "openai_stream_parallel_tool_calls.sse"} {
		t.Run(in, func(t *testing.T) {
			orig := readTestdata(t, in)
			via := sse(translateAnthropicStream(t, sse(translateOpenAIStream(t, orig)), StreamOptions{IncludeUsage: true}))
			read := func(body []byte) openai.ChatCompletionAccumulator {
				stream := openAIClient(answer(t, 200, "text/event-stream", body).URL).Chat.Completions.NewStreaming(context.Background(), openAIParams)
				var acc openai.ChatCompletionAccumulator
				for stream.Next() {
					acc.AddChunk(stream.Current())
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				return acc
			}
			want, got := read(orig), read(via)
			wm, gm := want.Choices[0].Message, got.Choices[0].Message
			if gm.Content != wm.Content || got.Choices[0].FinishReason != want.Choices[0].FinishReason || len(gm.ToolCalls) != len(wm.ToolCalls) {
				t.Fatalf("got %+v\nwant %+v", got.ChatCompletion, want.ChatCompletion)
			}
			for i := range gm.ToolCalls {
				if gm.ToolCalls[i].ID != wm.ToolCalls[i].ID || gm.ToolCalls[i].Function.Name != wm.ToolCalls[i].Function.Name || gm.ToolCalls[i].Function.Arguments != wm.ToolCalls[i].Function.Arguments {
					t.Fatalf("tool call %d: got %+v, want %+v", i, gm.ToolCalls[i], wm.ToolCalls[i])
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestAnthropicSDK_SeesErrors(t *testing.T) {
	t.Run("an error event mid-stream is the stream's error", func(t *testing.T) {
		evs := translateOpenAIStream(t, readTestdata(t, "openai_stream_tool_calls.sse"))
		body := sse(append(evs[:4:4], AnthropicErrorEvent("overloaded_error", "Overloaded")))
		stream := anthropicClient(answer(t, 200, "text/event-stream", body).URL).Messages.NewStreaming(context.Background(), anthropicParams)
		n := 0
		for stream.Next() {
			n++
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "overloaded_error") || n != 4 {
			t.Fatalf("%d events, err %v", n, err)
		}
	})
	t.Run("an OpenAI quota error in Anthropic's shape is a billing anthropic.Error", func(t *testing.T) {
		body := ToAnthropicError(429, []byte(`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`))
		_, err := anthropicClient(answer(t, 429, "application/json", body).URL).Messages.New(context.Background(), anthropicParams)
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.RawJSON(), `"billing_error"`) {
			t.Fatalf("%v", err)
		}
	})
}

// The SDK's own request, sent to a server that keeps it, translates.
func TestAnthropicSDK_RequestTranslates(t *testing.T) {
	srv, got := capture(t, "application/json", readTestdata(t, "anthropic_response_end_turn.json"))
	params := anthropic.MessageNewParams{
		Model:         "claude-sonnet-4-5",
		MaxTokens:     512,
		System:        []anthropic.TextBlockParam{{Text: "You are a weather bot."}},
		Temperature:   anthropic.Float(0.3),
		StopSequences: []string{"</answer>"},
		Metadata:      anthropic.MetadataParam{UserID: anthropic.String("user-1234")},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(
				anthropic.NewTextBlock("What's the weather where this was taken?"),
				anthropic.NewImageBlockBase64("image/png", "iVBORw0KGgo="),
			),
			anthropic.NewAssistantMessage(
				anthropic.NewTextBlock("Let me check."),
				anthropic.NewToolUseBlock("toolu_01TZR6ZrLHdpAWdmhVPuDfjQ", map[string]any{"city": "Madison", "units": "celsius"}, "get_weather"),
			),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_01TZR6ZrLHdpAWdmhVPuDfjQ", "21 degrees", false)),
		},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name: "get_weather", Description: anthropic.String("Get weather"),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]string{"type": "string"}, "units": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}}}, Required: []string{"city"}},
		}}},
		ToolChoice: anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{DisableParallelToolUse: anthropic.Bool(true)}},
	}
	if _, err := anthropicClient(srv.URL).Messages.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	r, err := AnthropicToOpenAIRequest(*got, OpenAIOptions{Model: "gpt-4o-mini"})
	if err != nil {
		t.Fatalf("%v\n%s", err, *got)
	}
	golden(t, "anthropic_sdk_request.to_openai.golden.json", pretty(t, r.Body))
}

// Every golden body and event decodes into the official SDK type of its
// format.
func TestSDKs_DecodeEveryGolden(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.golden.*"))
	if err != nil || len(names) < 15 {
		t.Fatalf("%d golden files, %v", len(names), err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		t.Run(base, func(t *testing.T) {
			b := readTestdata(t, base)
			toAnthropic := strings.Contains(base, ".to_anthropic.")
			switch {
			case strings.HasSuffix(base, ".sse"):
				for i, ev := range events(t, b) {
					if toAnthropic {
						var e anthropic.MessageStreamEventUnion
						if err := json.Unmarshal(ev.Data, &e); err != nil || e.Type != ev.Name {
							t.Fatalf("event %d %s: %v", i, ev.Data, err)
						}
					} else if !ev.IsDone() {
						var c openai.ChatCompletionChunk
						if err := json.Unmarshal(ev.Data, &c); err != nil || c.Object != "chat.completion.chunk" || c.ID == "" {
							t.Fatalf("chunk %d %s: %v", i, ev.Data, err)
						}
					}
				}
			case strings.Contains(base, "_error_"):
				if toAnthropic {
					var e anthropicshared.ErrorResponse
					if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" || e.Error.Type == "" || e.Error.Message == "" {
						t.Fatalf("%v: %s", err, b)
					}
				} else {
					var e struct{ Error openaishared.ErrorObject }
					if err := json.Unmarshal(b, &e); err != nil || e.Error.Type == "" || e.Error.Message == "" {
						t.Fatalf("%v: %s", err, b)
					}
				}
			case strings.Contains(base, "request"):
				if toAnthropic {
					var p anthropic.MessageNewParams
					if err := json.Unmarshal(b, &p); err != nil || p.Model == "" || p.MaxTokens < 1 || len(p.Messages) == 0 {
						t.Fatalf("%v: %+v", err, p)
					}
				} else {
					var p openai.ChatCompletionNewParams
					if err := json.Unmarshal(b, &p); err != nil || p.Model == "" || len(p.Messages) == 0 {
						t.Fatalf("%v: %+v", err, p)
					}
				}
			default:
				if toAnthropic {
					var m anthropic.Message
					if err := json.Unmarshal(b, &m); err != nil || m.Type != "message" || m.ID == "" || m.StopReason == "" {
						t.Fatalf("%v: %s", err, b)
					}
				} else {
					var c openai.ChatCompletion
					if err := json.Unmarshal(b, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason == "" {
						t.Fatalf("%v: %s", err, b)
					}
				}
			}
		})
	}
}
