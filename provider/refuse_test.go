package provider

import (
	"errors"
	"strings"
	"testing"
)

// wantError checks err is of kind (ErrInvalid or ErrUntranslatable) and
// names field.
func wantError(t *testing.T, err error, kind error, field string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var got string
	var ie *InvalidError
	var ue *UntranslatableError
	switch {
	case errors.As(err, &ie):
		got = ie.Field
	case errors.As(err, &ue):
		got = ue.Field
	}
	if got != field {
		t.Fatalf("err = %v: field %q, want %q", err, got, field)
	}
}

const userHi = `{"role":"user","content":"hi"}`

func TestOpenAIToAnthropicRequest_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
		kind              error
	}{
		{"n above one", `{"model":"m","messages":[` + userHi + `],"n":2}`, "n", ErrUntranslatable},
		{"logprobs", `{"model":"m","messages":[` + userHi + `],"logprobs":true}`, "logprobs", ErrUntranslatable},
		{"top logprobs", `{"model":"m","messages":[` + userHi + `],"top_logprobs":3}`, "top_logprobs", ErrUntranslatable},
		{"audio output", `{"model":"m","messages":[` + userHi + `],"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}}`, "audio", ErrUntranslatable},
		{"json schema", `{"model":"m","messages":[` + userHi + `],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`, "response_format", ErrUntranslatable},
		{"json object", `{"model":"m","messages":[` + userHi + `],"response_format":{"type":"json_object"}}`, "response_format", ErrUntranslatable},
		{"penalty", `{"model":"m","messages":[` + userHi + `],"presence_penalty":0.5}`, "presence_penalty", ErrUntranslatable},
		{"logit bias", `{"model":"m","messages":[` + userHi + `],"logit_bias":{"50256":-100}}`, "logit_bias", ErrUntranslatable},
		{"reasoning", `{"model":"m","messages":[` + userHi + `],"reasoning_effort":"high"}`, "reasoning_effort", ErrUntranslatable},
		{"web search", `{"model":"m","messages":[` + userHi + `],"web_search_options":{}}`, "web_search_options", ErrUntranslatable},
		{"functions", `{"model":"m","messages":[` + userHi + `],"functions":[{"name":"f"}]}`, "functions", ErrUntranslatable},
		{"an unknown field", `{"model":"m","messages":[` + userHi + `],"frobnicate":1}`, "frobnicate", ErrUntranslatable},
		{"a custom tool", `{"model":"m","messages":[` + userHi + `],"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0].type", ErrUntranslatable},
		{"allowed tools", `{"model":"m","messages":[` + userHi + `],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}}}`, "tool_choice.type", ErrUntranslatable},
		{"an audio part", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, "messages[0].content[0].type", ErrUntranslatable},
		{"a file part", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].type", ErrUntranslatable},
		{"an unknown part", `{"model":"m","messages":[` + userHi + `,{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"hologram"}]}]}`, "messages[2].content[0].type", ErrUntranslatable},
		{"an svg image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/svg+xml;base64,PHN2Zy8+"}}]}]}`, "messages[0].content[0].image_url.url", ErrUntranslatable},
		{"a participant name", `{"model":"m","messages":[{"role":"user","content":"hi","name":"bob"}]}`, "messages[0].name", ErrUntranslatable},
		{"an assistant refusal", `{"model":"m","messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]},` + userHi + `]}`, "messages[0].content[0].type", ErrUntranslatable},
		{"a custom tool call", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"x","input":"y"}}]},` + userHi + `]}`, "messages[0].tool_calls[0].type", ErrUntranslatable},
		{"arguments that are not an object", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1"}}]},` + userHi + `]}`, "messages[0].tool_calls[0].function.arguments", ErrUntranslatable},
		{"the function role", `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].name", ErrUntranslatable},
		{"a final assistant message", `{"model":"m","messages":[` + userHi + `,{"role":"assistant","content":"The answer is"}]}`, "messages[1]", ErrUntranslatable},
		{"only a system prompt", `{"model":"m","messages":[{"role":"system","content":"be terse"}]}`, "messages", ErrUntranslatable},
		{"an empty user message", `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages[0]", ErrUntranslatable},
		{"not JSON", `{"model":`, "", ErrInvalid},
		{"no model", `{"messages":[` + userHi + `]}`, "model", ErrInvalid},
		{"no messages", `{"model":"m"}`, "messages", ErrInvalid},
		{"a made-up role", `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "messages[0].role", ErrInvalid},
		{"a tool message without its id", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id", ErrInvalid},
		{"max tokens of zero", `{"model":"m","messages":[` + userHi + `],"max_completion_tokens":0}`, "max_completion_tokens", ErrInvalid},
		{"a hot temperature", `{"model":"m","messages":[` + userHi + `],"temperature":"hot"}`, "temperature", ErrInvalid},
		{"a stop that is a number", `{"model":"m","messages":[` + userHi + `],"stop":7}`, "stop", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := OpenAIToAnthropicRequest([]byte(tc.body), AnthropicOptions{})
			if err == nil {
				t.Fatalf("translated: %s", r.Body)
			}
			wantError(t, err, tc.kind, tc.field)
		})
	}
}

func TestOpenAIToAnthropicRequest_Options(t *testing.T) {
	t.Run("anthropic-version 2026-10-21 refuses temperature rather than drop it", func(t *testing.T) {
		_, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`],"temperature":0.2}`), AnthropicOptions{Version: AnthropicVersion20261021})
		wantError(t, err, ErrUntranslatable, "temperature")
		r, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`]}`), AnthropicOptions{Version: AnthropicVersion20261021})
		if err != nil || strings.Contains(string(r.Body), "temperature") {
			t.Fatalf("without temperature: %v %s", err, r.Body)
		}
	})
	t.Run("an unknown anthropic-version is an error", func(t *testing.T) {
		if _, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`]}`), AnthropicOptions{Version: "2024-01-01"}); err == nil {
			t.Fatal("no error")
		}
	})
	body := `{"model":"gpt-4o","messages":[{"role":"system","content":"a"},` + userHi + `,{"role":"developer","content":"b"},{"role":"user","content":"again"}]}`
	t.Run("a later developer message is lifted into system by default", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest([]byte(body), AnthropicOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"model":"gpt-4o","max_tokens":4096,"system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"again"}]}]}`
		if string(r.Body) != want {
			t.Fatalf("got  %s\nwant %s", r.Body, want)
		}
	})
	t.Run("SystemInMessages keeps a later one at its place", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest([]byte(body), AnthropicOptions{SystemInMessages: true, Model: "claude-haiku-4-5", MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"model":"claude-haiku-4-5","max_tokens":10,"system":[{"type":"text","text":"a"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"system","content":[{"type":"text","text":"b"}]},{"role":"user","content":[{"type":"text","text":"again"}]}]}`
		if string(r.Body) != want {
			t.Fatalf("got  %s\nwant %s", r.Body, want)
		}
		if r.Model != "claude-haiku-4-5" {
			t.Fatalf("model %q", r.Model)
		}
	})
	t.Run("safety_identifier wins over user, which is reported dropped", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`],"user":"u1","safety_identifier":"s1"}`), AnthropicOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.Body), `"metadata":{"user_id":"s1"}`) || strings.Join(r.Dropped, ",") != "user" {
			t.Fatalf("body %s dropped %q", r.Body, r.Dropped)
		}
	})
	t.Run("parallel_tool_calls false without tool_choice is auto without parallel use", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`), AnthropicOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.Body), `"tool_choice":{"type":"auto","disable_parallel_tool_use":true}`) ||
			!strings.Contains(string(r.Body), `"input_schema":{"type":"object","properties":{}}`) {
			t.Fatalf("body %s", r.Body)
		}
	})
	t.Run("required is any, none is none", func(t *testing.T) {
		for choice, want := range map[string]string{`"required"`: `{"type":"any"}`, `"none"`: `{"type":"none"}`} {
			r, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":`+choice+`}`), AnthropicOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(r.Body), `"tool_choice":`+want) {
				t.Fatalf("%s: body %s", choice, r.Body)
			}
		}
	})
	t.Run("a tool call id Anthropic would refuse is hashed alike in tool_use and tool_result", func(t *testing.T) {
		r, err := OpenAIToAnthropicRequest([]byte(`{"model":"m","messages":[`+userHi+`,{"role":"assistant","tool_calls":[{"id":"call.1/x","type":"function","function":{"name":"f","arguments":""}}]},{"role":"tool","tool_call_id":"call.1/x","content":"ok"}]}`), AnthropicOptions{})
		if err != nil {
			t.Fatal(err)
		}
		id := anthropicToolID("call.1/x")
		if !strings.HasPrefix(id, "toolu_") || strings.Count(string(r.Body), `"`+id+`"`) != 2 || !strings.Contains(string(r.Body), `"input":{}`) {
			t.Fatalf("id %s body %s", id, r.Body)
		}
	})
}

func TestAnthropicToOpenAIRequest_Refuses(t *testing.T) {
	const hi = `{"role":"user","content":"hi"}`
	for _, tc := range []struct {
		name, body, field string
		kind              error
	}{
		{"top_k", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"top_k":5}`, "top_k", ErrUntranslatable},
		{"thinking", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"thinking":{"type":"enabled","budget_tokens":1024}}`, "thinking", ErrUntranslatable},
		{"a server tool", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "tools[0].type", ErrUntranslatable},
		{"five stop sequences", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"stop_sequences":["a","b","c","d","e"]}`, "stop_sequences", ErrUntranslatable},
		{"a document", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}`, "messages[0].content[0].type", ErrUntranslatable},
		{"an image in a tool result", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}]}`, "messages[0].content[0].content[0].type", ErrUntranslatable},
		{"a file image", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source.type", ErrUntranslatable},
		{"citations on text", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x","citations":[{"type":"char_location"}]}]}]}`, "messages[0].content[0].citations", ErrUntranslatable},
		{"a thinking block", `{"model":"m","max_tokens":5,"messages":[` + hi + `,{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"}]},` + hi + `]}`, "messages[1].content[0].type", ErrUntranslatable},
		{"a prefill", `{"model":"m","max_tokens":5,"messages":[` + hi + `,{"role":"assistant","content":"{"}]}`, "messages[1]", ErrUntranslatable},
		{"cache warming", `{"model":"m","max_tokens":0,"messages":[` + hi + `]}`, "max_tokens", ErrUntranslatable},
		{"an inference region", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"inference_geo":"us"}`, "inference_geo", ErrUntranslatable},
		{"an unknown field", `{"model":"m","max_tokens":5,"messages":[` + hi + `],"frobnicate":true}`, "frobnicate", ErrUntranslatable},
		{"no max_tokens", `{"model":"m","messages":[` + hi + `]}`, "max_tokens", ErrInvalid},
		{"not JSON", `[`, "", ErrInvalid},
		{"a made-up role", `{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}`, "messages[0].role", ErrInvalid},
		{"a tool result without its id", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "messages[0].content[0].tool_use_id", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := AnthropicToOpenAIRequest([]byte(tc.body), OpenAIOptions{})
			if err == nil {
				t.Fatalf("translated: %s", r.Body)
			}
			wantError(t, err, tc.kind, tc.field)
		})
	}
}

func TestAnthropicToOpenAIRequest_Options(t *testing.T) {
	t.Run("LegacyMaxTokens sends max_tokens, for Ollama", func(t *testing.T) {
		r, err := AnthropicToOpenAIRequest([]byte(`{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"hi"}]}`), OpenAIOptions{LegacyMaxTokens: true, Model: "llama3.2"})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"max_tokens":7}`; string(r.Body) != want {
			t.Fatalf("got  %s\nwant %s", r.Body, want)
		}
	})
	t.Run("is_error is dropped and reported; text after tool results follows them", func(t *testing.T) {
		r, err := AnthropicToOpenAIRequest([]byte(`{"model":"m","max_tokens":7,"system":"be brief","temperature":0.5,"stop_sequences":["x"],"metadata":{"user_id":"u"},
			"tool_choice":{"type":"any","disable_parallel_tool_use":true},
			"tools":[{"name":"f","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],
			"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"boom","is_error":true},{"type":"text","text":"try again"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]}]}`), OpenAIOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"boom","tool_call_id":"toolu_1"},{"role":"user","content":[{"type":"text","text":"try again"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]}],"max_completion_tokens":7,"stop":["x"],"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","parallel_tool_calls":false,"user":"u"}`
		if string(r.Body) != want {
			t.Fatalf("got  %s\nwant %s", r.Body, want)
		}
		if got := strings.Join(r.Dropped, ","); got != "messages[2].content[0].is_error,tools[0].cache_control" {
			t.Fatalf("dropped %s", got)
		}
	})
	t.Run("a named tool and none", func(t *testing.T) {
		for choice, want := range map[string]string{
			`{"type":"tool","name":"f"}`: `"tool_choice":{"type":"function","function":{"name":"f"}}`,
			`{"type":"none"}`:            `"tool_choice":"none"`,
			`{"type":"auto"}`:            `"tool_choice":"auto"`,
		} {
			r, err := AnthropicToOpenAIRequest([]byte(`{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":`+choice+`}`), OpenAIOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(r.Body), want) || strings.Contains(string(r.Body), "parallel_tool_calls") {
				t.Fatalf("%s: %s", choice, r.Body)
			}
		}
	})
	t.Run("a system message in the conversation stays at its place", func(t *testing.T) {
		r, err := AnthropicToOpenAIRequest([]byte(`{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"hi"},{"role":"system","content":[{"type":"text","text":"now be formal"}]},{"role":"user","content":"again"}]}`), OpenAIOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := `"messages":[{"role":"user","content":"hi"},{"role":"system","content":"now be formal"},{"role":"user","content":"again"}]`; !strings.Contains(string(r.Body), want) {
			t.Fatalf("%s", r.Body)
		}
	})
}

func TestAnthropicToOpenAIResponse_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
		kind              error
	}{
		{"a server tool block", `{"id":"m","type":"message","model":"c","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}],"stop_reason":"end_turn","usage":{}}`, "content[0].type", ErrUntranslatable},
		{"citations", `{"id":"m","type":"message","model":"c","content":[{"type":"text","text":"x","citations":[{"type":"char_location"}]}],"stop_reason":"end_turn","usage":{}}`, "content[0].citations", ErrUntranslatable},
		{"pause_turn", `{"id":"m","type":"message","model":"c","content":[],"stop_reason":"pause_turn","usage":{}}`, "stop_reason", ErrUntranslatable},
		{"no stop reason", `{"id":"m","type":"message","model":"c","content":[],"stop_reason":null,"usage":{}}`, "stop_reason", ErrInvalid},
		{"an error body", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "", ErrInvalid},
		{"an HTML page", `<html>502 Bad Gateway</html>`, "", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AnthropicToOpenAIResponse([]byte(tc.body), ResponseOptions{})
			if err == nil {
				t.Fatalf("translated: %s", b)
			}
			wantError(t, err, tc.kind, tc.field)
		})
	}
}

func TestAnthropicToOpenAIResponse_Thinking(t *testing.T) {
	b, err := AnthropicToOpenAIResponse([]byte(`{"id":"msg_1","type":"message","model":"c","content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"42"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"cache_creation_input_tokens":4,"cache_read_input_tokens":5,"output_tokens":6}}`), ResponseOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"chatcmpl-msg_1","object":"chat.completion","created":1741569952,"model":"c","choices":[{"index":0,"message":{"role":"assistant","content":"42","refusal":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":5}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestOpenAIToAnthropicResponse_Refuses(t *testing.T) {
	const msg = `"message":{"role":"assistant","content":"x"}`
	for _, tc := range []struct {
		name, body, field string
		kind              error
	}{
		{"two choices", `{"id":"c","object":"chat.completion","model":"g","choices":[{"index":0,` + msg + `,"finish_reason":"stop"},{"index":1,` + msg + `,"finish_reason":"stop"}]}`, "choices", ErrUntranslatable},
		{"audio", `{"id":"c","object":"chat.completion","model":"g","choices":[{"index":0,"message":{"role":"assistant","content":null,"audio":{"id":"a"}},"finish_reason":"stop"}]}`, "choices[0].message.audio", ErrUntranslatable},
		{"function_call", `{"id":"c","object":"chat.completion","model":"g","choices":[{"index":0,` + msg + `,"finish_reason":"function_call"}]}`, "choices[0].finish_reason", ErrUntranslatable},
		{"bad arguments", `{"id":"c","object":"chat.completion","model":"g","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}`, "choices[0].message.tool_calls[0].function.arguments", ErrUntranslatable},
		{"an error body", `{"error":{"message":"x","type":"server_error","code":502}}`, "", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenAIToAnthropicResponse([]byte(tc.body))
			if err == nil {
				t.Fatalf("translated: %s", b)
			}
			wantError(t, err, tc.kind, tc.field)
		})
	}
}

func TestOpenAIToAnthropicResponse_Refusal(t *testing.T) {
	b, err := OpenAIToAnthropicResponse([]byte(`{"id":"chatcmpl-msg_9","object":"chat.completion","model":"g","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":20}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_9","type":"message","role":"assistant","model":"g","content":[{"type":"text","text":"I can't help with that."}],"stop_reason":"refusal","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":20,"output_tokens":7}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
