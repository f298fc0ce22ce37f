package fakeprovider_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

var weather = shared.FunctionDefinitionParam{
	Name: "get_weather",
	Parameters: shared.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}}},
		"required":   []string{"city"},
	},
}

var wantArgs = `{"city":"fake","unit":"celsius"}`

// TestServer_ToolCallsOpenAI: read by the official openai-go client, the
// fake calls the offered tool (streamed too, in fragments) and answers
// with the tool's result once it is given.
func TestServer_ToolCallsOpenAI(t *testing.T) {
	_, url := start(t)
	ctx := context.Background()
	for _, base := range []string{url + "/openai/v1/", url + "/ollama/v1/"} {
		client := openai.NewClient(option.WithBaseURL(base), option.WithAPIKey("k"), option.WithMaxRetries(0))
		params := openai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
			Tools:    []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(weather)},
		}
		c, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		call := c.Choices[0].Message.ToolCalls
		if c.Choices[0].FinishReason != "tool_calls" || len(call) != 1 || call[0].Function.Name != "get_weather" || call[0].Function.Arguments != wantArgs || !strings.HasPrefix(call[0].ID, "call_") {
			t.Fatalf("%s: completion %+v", base, c.Choices[0])
		}
		s := client.Chat.Completions.NewStreaming(ctx, params)
		acc := openai.ChatCompletionAccumulator{}
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		sc := acc.Choices[0].Message.ToolCalls
		if acc.Choices[0].FinishReason != "tool_calls" || len(sc) != 1 || sc[0].Function.Arguments != wantArgs {
			t.Fatalf("%s: streamed %+v", base, acc.Choices[0])
		}
		params.Messages = append(params.Messages, c.Choices[0].Message.ToParam(), openai.ToolMessage("18 degrees", call[0].ID))
		final, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if final.Choices[0].Message.Content != fakeprovider.ToolAnswer("18 degrees") || final.Choices[0].FinishReason != "stop" {
			t.Fatalf("%s: final %+v", base, final.Choices[0])
		}
	}
}

func TestServer_ToolChoices(t *testing.T) {
	_, url := start(t)
	two := `"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"n":{"type":"integer"}}}}},{"type":"function","function":{"name":"b"}}]`
	for _, tc := range []struct {
		name, body string
		calls      []string
	}{
		{"several tools: two calls in parallel", `{"model":"m","messages":[{"role":"user","content":"x"}],` + two + `}`, []string{"a", "b"}},
		{"parallel off: one", `{"model":"m","parallel_tool_calls":false,"messages":[{"role":"user","content":"x"}],` + two + `}`, []string{"a"}},
		{"a named tool", `{"model":"m","tool_choice":{"type":"function","function":{"name":"b"}},"messages":[{"role":"user","content":"x"}],` + two + `}`, []string{"b"}},
		{"none: text", `{"model":"m","tool_choice":"none","messages":[{"role":"user","content":"x"}],` + two + `}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, body := post(t, url+"/openai/v1/chat/completions", tc.body)
			var c struct {
				Choices []struct {
					Message struct {
						Content   *string
						ToolCalls []struct {
							Function struct{ Name, Arguments string }
						} `json:"tool_calls"`
					}
				}
			}
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tc := range c.Choices[0].Message.ToolCalls {
				names = append(names, tc.Function.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.calls, ",") || (len(tc.calls) == 0 && (c.Choices[0].Message.Content == nil || *c.Choices[0].Message.Content != fakeprovider.Reply)) {
				t.Fatalf("calls %v, want %v: %s", names, tc.calls, body)
			}
		})
	}
	t.Run("a tool result without its call is a 400, as at OpenAI", func(t *testing.T) {
		resp, body := post(t, url+"/openai/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_1","content":"r"}]}`)
		if resp.StatusCode != 400 || !strings.Contains(body, "must be a response to a preceeding message with 'tool_calls'") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("a call without its result is a 400", func(t *testing.T) {
		resp, body := post(t, url+"/openai/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"a","arguments":"{}"}}]},{"role":"user","content":"y"}]}`)
		if resp.StatusCode != 400 || !strings.Contains(body, "call_1") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestServer_ToolUseAnthropic: read by the official anthropic-sdk-go
// client, streamed and not.
func TestServer_ToolUseAnthropic(t *testing.T) {
	_, url := start(t)
	ctx := context.Background()
	client := anthropic.NewClient(aoption.WithBaseURL(url+"/anthropic"), aoption.WithAPIKey("k"), aoption.WithMaxRetries(0))
	params := anthropic.MessageNewParams{
		Model: "claude-3-5-haiku-latest", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}}}}}}},
	}
	m, err := client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, m *anthropic.Message) anthropic.ToolUseBlock {
		t.Helper()
		if m.StopReason != anthropic.StopReasonToolUse || len(m.Content) != 2 || m.Content[0].Text != fakeprovider.ToolPreamble {
			t.Fatalf("%s: %+v", what, m)
		}
		tu := m.Content[1].AsToolUse()
		if tu.Name != "get_weather" || string(tu.Input) != wantArgs || !strings.HasPrefix(tu.ID, "toolu_") {
			t.Fatalf("%s: tool use %+v", what, tu)
		}
		return tu
	}
	tu := check("message", m)
	s := client.Messages.NewStreaming(ctx, params)
	acc := anthropic.Message{}
	for s.Next() {
		if err := acc.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	check("stream", &acc)
	params.Messages = append(params.Messages, m.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(tu.ID, "18 degrees", false)))
	final, err := client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if final.StopReason != anthropic.StopReasonEndTurn || final.Content[0].Text != fakeprovider.ToolAnswer("18 degrees") {
		t.Fatalf("final %+v", final)
	}
	t.Run("a tool result that answers no tool_use is a 400, as at Anthropic", func(t *testing.T) {
		params.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_nope", "r", false))}
		_, err := client.Messages.New(ctx, params)
		var ae *anthropic.Error
		if err == nil || !asError(err, &ae) || ae.StatusCode != 400 || !strings.Contains(err.Error(), "toolu_nope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an empty text block is a 400", func(t *testing.T) {
		resp, body := post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, "anthropic-version", "2023-06-01")
		if resp.StatusCode != 400 || !strings.Contains(body, "non-empty") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestServer_Embeddings(t *testing.T) {
	_, url := start(t)
	ctx := context.Background()
	for _, base := range []string{url + "/openai/v1/", url + "/ollama/v1/"} {
		client := openai.NewClient(option.WithBaseURL(base), option.WithAPIKey("k"), option.WithMaxRetries(0))
		e, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, Dimensions: openai.Int(4),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := fakeprovider.Embedding("text-embedding-3-small", "b", 4)
		if len(e.Data) != 2 || e.Data[1].Index != 1 || len(e.Data[1].Embedding) != 4 || float32(e.Data[1].Embedding[2]) != want[2] || e.Usage.PromptTokens == 0 {
			t.Fatalf("%s: %+v", base, e)
		}
	}
	_, body := post(t, url+"/openai/v1/embeddings", `{"model":"m","input":"x","encoding_format":"base64"}`)
	var b struct{ Data []struct{ Embedding string } }
	if json.Unmarshal([]byte(body), &b) != nil || len(b.Data) != 1 || len(b.Data[0].Embedding) != 44 { // 8 float32 = 32 bytes
		t.Fatalf("base64 %s", body)
	}
	if resp, body := post(t, url+"/openai/v1/embeddings", `{"model":"m","input":{"no":1}}`); resp.StatusCode != 400 || !strings.Contains(body, "input") {
		t.Fatalf("bad input: %d %s", resp.StatusCode, body)
	}
}

func TestServer_Responses(t *testing.T) {
	fp, url := start(t)
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(url+"/openai/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	r, err := client.Responses.New(ctx, responsesParams("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != fakeprovider.Reply || r.Status != "completed" {
		t.Fatalf("response %+v", r)
	}
	s := client.Responses.NewStreaming(ctx, responsesParams("hi"))
	var text strings.Builder
	completed := false
	for s.Next() {
		ev := s.Current()
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
		completed = completed || ev.Type == "response.completed"
	}
	if s.Err() != nil || text.String() != fakeprovider.Reply || !completed {
		t.Fatalf("stream %q completed=%v err=%v", text.String(), completed, s.Err())
	}
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 3, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, body := post(t, url+"/openai/v1/responses", `{"model":"m","input":"hi","stream":true}`)
	if !strings.Contains(body, "event: error") || strings.Contains(body, "response.completed") {
		t.Fatalf("stream error %s", body)
	}
}

func TestServer_ModelsAndRateLimits(t *testing.T) {
	fp, url := start(t)
	for p, path := range map[string]string{"openai": "/openai/v1/models", "anthropic": "/anthropic/v1/models", "ollama": "/ollama/v1/models"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		var l struct{ Data []struct{ ID string } }
		_ = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(l.Data) != len(fakeprovider.Models[p]) || l.Data[0].ID != fakeprovider.Models[p][0] {
			t.Fatalf("%s models: %d %+v", p, resp.StatusCode, l)
		}
	}
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := http.Get(url + "/openai/v1/models"); resp.StatusCode != 503 {
		t.Fatalf("a fault on the model list: %d", resp.StatusCode)
	}
	if fp.ModelListCalls("openai") != 2 || fp.Calls("openai") != 0 {
		t.Fatalf("model list calls %d, calls %d", fp.ModelListCalls("openai"), fp.Calls("openai"))
	}
	// The model list used up none of the fault's Times.
	if resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 503 {
		t.Fatalf("the chat call after: %d", resp.StatusCode)
	}

	resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if resp.Header.Get("x-ratelimit-remaining-requests") != "9999" {
		t.Fatalf("healthy rate-limit headers: %v", resp.Header)
	}
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultExhausted, Reset: fakeprovider.Duration(1500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, url+"/openai/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-remaining-requests") != "0" || resp.Header.Get("x-ratelimit-reset-requests") != "1.5s" || !strings.Contains(body, fakeprovider.Reply) {
		t.Fatalf("exhausted: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if err := fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultExhausted, Reset: fakeprovider.Duration(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	resp, _ = post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "anthropic-version", "2023-06-01")
	reset, err := time.Parse(time.RFC3339, resp.Header.Get("anthropic-ratelimit-requests-reset"))
	if resp.StatusCode != 200 || resp.Header.Get("anthropic-ratelimit-requests-remaining") != "0" || err != nil || time.Until(reset) < 2*time.Second || time.Until(reset) > 5*time.Second {
		t.Fatalf("anthropic exhausted: %d %v", resp.StatusCode, resp.Header)
	}
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultExhausted}); err == nil {
		t.Fatal("exhausted without a reset was accepted")
	}
}

func responsesParams(input string) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)}}
}

func asError[T error](err error, target *T) bool { return errors.As(err, target) }

func TestServer_FaultForOneModel(t *testing.T) {
	fp, url := start(t)
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Model: "gpt-4o", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 200 {
		t.Fatalf("another model: %d", resp.StatusCode)
	}
	if resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 503 {
		t.Fatalf("the model: %d", resp.StatusCode)
	}
	// Times counts the model's calls only.
	if resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 200 {
		t.Fatalf("after its one time: %d", resp.StatusCode)
	}
}
