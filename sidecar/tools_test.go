package sidecar_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"The weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`
const timeTool = `{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string","enum":["UTC","CET"]}}}}}`

func toolChat(extra string, msgs ...string) string {
	return `{"model":"gpt-4o-mini",` + extra + `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather in Paris?"}` + strings.Join(append([]string{""}, msgs...), ",") + `],"tools":[` + weatherTool + `]}`
}

// completion is a chat completion as a client reads it.
type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not the expected JSON: %v\n%s", err, s)
	}
	return v
}

// streamed is what a chat client assembles from a stream.
type streamed struct {
	text   string
	calls  map[int]*streamedCall
	finish string
	usage  bool
	done   bool
}

type streamedCall struct{ id, name, args string }

func assemble(t *testing.T, a answer) streamed {
	t.Helper()
	s := streamed{calls: map[int]*streamedCall{}}
	for _, ev := range a.events(t) {
		if ev.IsDone() {
			s.done = true
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content   *string `json:"content"`
					ToolCalls []struct {
						Index    int    `json:"index"`
						ID       string `json:"id"`
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
		}
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatalf("a chunk that is not JSON: %s", ev.Data)
		}
		s.usage = s.usage || (len(c.Usage) > 0 && string(c.Usage) != "null")
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				s.text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				sc := s.calls[tc.Index]
				if sc == nil {
					sc = &streamedCall{}
					s.calls[tc.Index] = sc
				}
				if tc.ID != "" {
					sc.id = tc.ID
				}
				sc.name += tc.Function.Name
				sc.args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				s.finish = *ch.FinishReason
			}
		}
	}
	return s
}

// TestSidecar_ToolsAcrossProviders: with the primary down, a tool-calling
// conversation (the call, the tool's result, the answer) is served by
// Anthropic, translated both ways, streamed and not; Ollama gets the
// tools as they are.
func TestSidecar_ToolsAcrossProviders(t *testing.T) {
	r := newRig(t, tablePolicy, 1, defaultRoutes)
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	s := r.startSidecarWith(t, 1, sidecarYAML(r.fpURL, defaultRoutes), &log)
	down := func(t *testing.T, ps ...string) {
		t.Helper()
		r.fp.Reset()
		for _, p := range ps {
			if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("the call, the result and the answer, from Anthropic", func(t *testing.T) {
		down(t, "openai")
		a := chat(t, s.url, toolChat(""))
		if a.status != 200 || a.provider != "anthropic" || a.fallback != "true" {
			t.Fatalf("answer %d from %q: %s", a.status, a.provider, a.body)
		}
		c := decode[completion](t, a.body)
		m := c.Choices[0].Message
		if c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-msg_") || c.Choices[0].FinishReason != "tool_calls" || len(m.ToolCalls) != 1 ||
			m.ToolCalls[0].Type != "function" || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].Function.Arguments != `{"city":"fake"}` ||
			m.Content == nil || *m.Content != fakeprovider.ToolPreamble || c.Usage.PromptTokens == 0 || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
			t.Fatalf("the translated tool call: %s", a.body)
		}
		sent := lastBody(t, r.fp, "anthropic")
		tools, _ := sent["tools"].([]any)
		tool, _ := tools[0].(map[string]any)
		if sent["model"] != "claude-3-5-haiku-latest" || js(sent["system"]) != `[{"text":"Be brief.","type":"text"}]` || tool["name"] != "get_weather" ||
			js(tool["input_schema"]) != `{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}` || sent["max_tokens"] != float64(4096) {
			t.Fatalf("Anthropic got %s", js(sent))
		}

		id := m.ToolCalls[0].ID
		assistant := `{"role":"assistant","content":` + js(*m.Content) + `,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"fake\"}"}}]}`
		result := `{"role":"tool","tool_call_id":"` + id + `","content":"18 degrees"}`
		a = chat(t, s.url, toolChat("", assistant, result))
		c = decode[completion](t, a.body)
		if a.status != 200 || a.provider != "anthropic" || c.Choices[0].FinishReason != "stop" || c.Choices[0].Message.Content == nil || *c.Choices[0].Message.Content != fakeprovider.ToolAnswer("18 degrees") {
			t.Fatalf("the answer to the result: %d %s", a.status, a.body)
		}
		msgs, _ := lastBody(t, r.fp, "anthropic")["messages"].([]any)
		if js(msgs[1]) != `{"content":[{"text":"Let me call a tool.","type":"text"},{"id":"`+id+`","input":{"city":"fake"},"name":"get_weather","type":"tool_use"}],"role":"assistant"}` ||
			js(msgs[2]) != `{"content":[{"content":"18 degrees","tool_use_id":"`+id+`","type":"tool_result"}],"role":"user"}` {
			t.Fatalf("Anthropic got the conversation as %s", js(msgs))
		}

		// The same, streamed.
		a = chat(t, s.url, toolChat(`"stream":true,"stream_options":{"include_usage":true},`))
		st := assemble(t, a)
		if a.status != 200 || a.provider != "anthropic" || !st.done || st.finish != "tool_calls" || !st.usage || len(st.calls) != 1 ||
			st.calls[0].name != "get_weather" || st.calls[0].args != `{"city":"fake"}` || !strings.HasPrefix(st.calls[0].id, "toolu_") || st.text != fakeprovider.ToolPreamble {
			t.Fatalf("the streamed tool call: %+v %+v\n%s", st, st.calls[0], a.body)
		}
		a = chat(t, s.url, toolChat(`"stream":true,`, assistant, result))
		if st := assemble(t, a); !st.done || st.finish != "stop" || st.text != fakeprovider.ToolAnswer("18 degrees") || st.usage {
			t.Fatalf("the streamed answer: %+v\n%s", st, a.body)
		}
	})

	t.Run("parallel tool calls, streamed, keep their indexes", func(t *testing.T) {
		down(t, "openai")
		body := strings.Replace(toolChat(`"stream":true,`), `"tools":[`+weatherTool, `"tools":[`+weatherTool+","+timeTool, 1)
		st := assemble(t, chat(t, s.url, body))
		if len(st.calls) != 2 || st.calls[0].name != "get_weather" || st.calls[1].name != "get_time" || st.calls[1].args != `{"zone":"UTC"}` || st.calls[0].id == st.calls[1].id {
			t.Fatalf("calls %+v %+v", st.calls[0], st.calls[1])
		}
	})

	t.Run("tool_choice and parallel_tool_calls become Anthropic's", func(t *testing.T) {
		down(t, "openai")
		for _, tc := range []struct{ extra, want string }{
			{`"tool_choice":"required",`, `{"type":"any"}`},
			{`"tool_choice":"auto",`, `{"type":"auto"}`},
			{`"tool_choice":"none",`, `{"type":"none"}`},
			{`"tool_choice":{"type":"function","function":{"name":"get_weather"}},`, `{"name":"get_weather","type":"tool"}`},
			{`"parallel_tool_calls":false,`, `{"disable_parallel_tool_use":true,"type":"auto"}`},
		} {
			a := chat(t, s.url, toolChat(tc.extra))
			if got := js(lastBody(t, r.fp, "anthropic")["tool_choice"]); a.status != 200 || got != tc.want {
				t.Errorf("%s: Anthropic got tool_choice %s, want %s (%d %s)", tc.extra, got, tc.want, a.status, a.body)
			}
		}
	})

	t.Run("Ollama gets the tools as they are", func(t *testing.T) {
		down(t, "openai", "anthropic")
		a := chat(t, s.url, toolChat(`"tool_choice":"required","parallel_tool_calls":false,`))
		sent := lastBody(t, r.fp, "ollama")
		var want map[string]any
		_ = json.Unmarshal([]byte(weatherTool), &want)
		if a.status != 200 || a.provider != "ollama" || js(sent["tools"]) != js([]any{want}) || sent["tool_choice"] != "required" || sent["parallel_tool_calls"] != false {
			t.Fatalf("%d from %q; Ollama got %s", a.status, a.provider, js(sent))
		}
		if c := decode[completion](t, a.body); c.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" {
			t.Fatalf("Ollama's tool call: %s", a.body)
		}
	})

	t.Run("what Anthropic cannot do faithfully skips it, with the reason in a header and the log", func(t *testing.T) {
		for _, tc := range []struct{ name, body, skipped string }{
			{"n > 1", strings.Replace(hello, `"messages"`, `"n":2,"messages"`, 1), "anthropic=untranslatable:n"},
			{"a system prompt alone", `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Only this."}]}`, "anthropic=untranslatable:messages"},
			{"json_schema", strings.Replace(hello, `"messages"`, `"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},"messages"`, 1), "anthropic=untranslatable:response_format"},
			{"a participant name", `{"model":"gpt-4o-mini","messages":[{"role":"user","name":"ann","content":"hi"}]}`, "anthropic=untranslatable:messages[0].name"},
			{"a final assistant message (a prefill)", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure:"}]}`, "anthropic=untranslatable:messages[1]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				down(t, "openai")
				logs.Reset()
				a := chat(t, s.url, tc.body)
				if a.status != 200 || a.provider != "ollama" || a.skipped() != tc.skipped {
					t.Fatalf("%d from %q, skipped %q, want ollama and %q: %s", a.status, a.provider, a.skipped(), tc.skipped, a.body)
				}
				if r.fp.Calls("anthropic") != 0 {
					t.Fatal("Anthropic was called")
				}
				field := strings.TrimPrefix(tc.skipped, "anthropic=untranslatable:")
				if !strings.Contains(logs.String(), `"field":"`+field+`"`) || !strings.Contains(logs.String(), "cannot be translated") {
					t.Fatalf("no log line names %s:\n%s", field, logs.String())
				}
			})
		}
	})

	t.Run("a request the translation finds invalid is a 400 naming the field", func(t *testing.T) {
		down(t, "openai")
		a := chat(t, s.url, toolChat(`"tool_choice":{"type":"function"},`))
		var e struct {
			Error struct{ Message, Type, Param string }
		}
		_ = json.Unmarshal([]byte(a.body), &e)
		if a.status != 400 || e.Error.Type != "invalid_request_error" || e.Error.Param != "tool_choice.function.name" || !strings.Contains(e.Error.Message, "tool_choice.function.name") {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if r.fp.Calls("anthropic") != 0 || r.fp.Calls("ollama") != 0 {
			t.Fatal("an invalid request went on down the chain")
		}
	})

	t.Run("fields that cannot change the answer are left out, and logged", func(t *testing.T) {
		down(t, "openai")
		logs.Reset()
		a := chat(t, s.url, strings.Replace(hello, `"messages"`, `"seed":7,"store":true,"messages"`, 1))
		if sent := lastBody(t, r.fp, "anthropic"); a.status != 200 || a.provider != "anthropic" || sent["seed"] != nil || sent["store"] != nil {
			t.Fatalf("%d from %q, Anthropic got %s", a.status, a.provider, js(sent))
		}
		if !strings.Contains(logs.String(), `"fields":["seed","store"]`) {
			t.Fatalf("the dropped fields were not logged:\n%s", logs.String())
		}
	})
}
