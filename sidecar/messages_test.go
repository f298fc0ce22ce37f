package sidecar_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

const anthropicWeatherTool = `{"name":"get_weather","description":"The weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

func messagesBody(extra string, msgs ...string) string {
	return `{"model":"claude-sonnet-4-5","max_tokens":300,"system":"Be brief.",` + extra + `"messages":[{"role":"user","content":"Weather in Paris?"}` + strings.Join(append([]string{""}, msgs...), ",") + `]}`
}

const anthropicVersion = "2023-06-01"

func messages(t *testing.T, url, body string) answer {
	t.Helper()
	return post(t, url+"/v1/messages", body, "anthropic-version", anthropicVersion, "x-api-key", "the-apps-own-key")
}

// message is an Anthropic message as a client reads it.
type message struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Content []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// assembleMessage is what an Anthropic client assembles from a stream.
func assembleMessage(t *testing.T, a answer) (names []string, text string, tools map[int][2]string, stop string) {
	t.Helper()
	tools = map[int][2]string{}
	for _, ev := range a.events(t) {
		names = append(names, ev.Name)
		var e struct {
			Index        int `json:"index"`
			ContentBlock struct {
				Type, ID, Name string
			} `json:"content_block"`
			Delta struct {
				Type        string `json:"type"`
				Text        string `json:"text"`
				PartialJSON string `json:"partial_json"`
				StopReason  string `json:"stop_reason"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatalf("an event that is not JSON: %s", ev.Data)
		}
		switch ev.Name {
		case "content_block_start":
			if e.ContentBlock.Type == "tool_use" {
				tools[e.Index] = [2]string{e.ContentBlock.Name, ""}
			}
		case "content_block_delta":
			text += e.Delta.Text
			if tu, ok := tools[e.Index]; ok {
				tools[e.Index] = [2]string{tu[0], tu[1] + e.Delta.PartialJSON}
			}
		case "message_delta":
			stop = e.Delta.StopReason
		}
	}
	return names, text, tools, stop
}

// TestSidecar_Messages: POST /v1/messages for apps on Anthropic's SDKs,
// served by Anthropic first, then by OpenAI and Ollama translated, in
// Anthropic's format, errors included.
func TestSidecar_Messages(t *testing.T) {
	r := newRig(t, tablePolicy, 1, defaultRoutes)
	s := r.sidecars[0]
	down := func(t *testing.T, ps ...string) {
		t.Helper()
		r.fp.Reset()
		for _, p := range ps {
			if err := r.fp.SetFault(p, fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 529}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("Anthropic first, as sent, with the sidecar's key", func(t *testing.T) {
		down(t)
		a := messages(t, s.url, messagesBody(`"top_k":5,`))
		m := decode[message](t, a.body)
		if a.status != 200 || a.provider != "anthropic" || a.fallback != "false" || m.Type != "message" || m.Content[0].Text != fakeprovider.Reply {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
		c, _ := r.fp.LastCall("anthropic")
		sent := lastBody(t, r.fp, "anthropic")
		if c.Headers["Anthropic-Version"] != anthropicVersion || c.Headers["X-Api-Key"] != testEnv["ANTHROPIC_API_KEY"] || sent["model"] != "claude-3-5-haiku-latest" ||
			sent["top_k"] != float64(5) || sent["system"] != "Be brief." || r.fp.Calls("openai") != 0 {
			t.Fatalf("Anthropic got %v %s", c.Headers, js(sent))
		}
	})

	t.Run("Anthropic overloaded: OpenAI answers, in Anthropic's format", func(t *testing.T) {
		down(t, "anthropic")
		a := messages(t, s.url, messagesBody(""))
		m := decode[message](t, a.body)
		if a.status != 200 || a.provider != "openai" || a.fallback != "true" || m.Type != "message" || m.Role != "assistant" || !strings.HasPrefix(m.ID, "msg_chatcmpl-") ||
			len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != fakeprovider.Reply || m.StopReason != "end_turn" || m.Usage.InputTokens == 0 || m.Usage.OutputTokens == 0 {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
		sent := lastBody(t, r.fp, "openai")
		if js(sent["messages"]) != `[{"content":"Be brief.","role":"system"},{"content":"Weather in Paris?","role":"user"}]` || sent["max_completion_tokens"] != float64(300) {
			t.Fatalf("OpenAI got %s", js(sent))
		}
		down(t, "anthropic", "openai")
		if a := messages(t, s.url, messagesBody("")); a.status != 200 || a.provider != "ollama" || lastBody(t, r.fp, "ollama")["max_tokens"] != float64(300) {
			t.Fatalf("Ollama: %d from %q, got %s", a.status, a.provider, js(lastBody(t, r.fp, "ollama")))
		}
	})

	t.Run("streamed from OpenAI as Anthropic's events", func(t *testing.T) {
		down(t, "anthropic")
		a := messages(t, s.url, messagesBody(`"stream":true,`))
		names, text, _, stop := assembleMessage(t, a)
		if a.status != 200 || a.provider != "openai" || names[0] != "message_start" || names[1] != "content_block_start" || names[len(names)-1] != "message_stop" ||
			names[len(names)-2] != "message_delta" || text != fakeprovider.Reply || stop != "end_turn" {
			t.Fatalf("%d from %q: %v %q %q\n%s", a.status, a.provider, names, text, stop, a.body)
		}
	})

	t.Run("a tool-calling conversation through OpenAI, streamed and not", func(t *testing.T) {
		down(t, "anthropic")
		a := messages(t, s.url, messagesBody(`"tools":[`+anthropicWeatherTool+`],`))
		m := decode[message](t, a.body)
		if a.status != 200 || m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || m.Content[0].Name != "get_weather" || string(m.Content[0].Input) != `{"city":"fake"}` {
			t.Fatalf("%d: %s", a.status, a.body)
		}
		if tools := js(lastBody(t, r.fp, "openai")["tools"]); tools != `[{"function":{"description":"The weather now","name":"get_weather","parameters":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}},"type":"function"}]` {
			t.Fatalf("OpenAI got the tools as %s", tools)
		}
		id := m.Content[0].ID
		turn := `{"role":"assistant","content":[{"type":"tool_use","id":"` + id + `","name":"get_weather","input":{"city":"fake"}}]}`
		result := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + id + `","content":"18 degrees"}]}`
		a = messages(t, s.url, messagesBody(`"tools":[`+anthropicWeatherTool+`],`, turn, result))
		m = decode[message](t, a.body)
		if a.status != 200 || m.StopReason != "end_turn" || m.Content[0].Text != fakeprovider.ToolAnswer("18 degrees") {
			t.Fatalf("the answer to the result: %d %s", a.status, a.body)
		}
		msgs := lastBody(t, r.fp, "openai")["messages"].([]any)
		if js(msgs[len(msgs)-1]) != `{"content":"18 degrees","role":"tool","tool_call_id":"`+id+`"}` {
			t.Fatalf("OpenAI got %s", js(msgs))
		}
		a = messages(t, s.url, messagesBody(`"stream":true,"tools":[`+anthropicWeatherTool+`],`))
		_, _, tools, stop := assembleMessage(t, a)
		if len(tools) != 1 || tools[0] != [2]string{"get_weather", `{"city":"fake"}`} || stop != "tool_use" {
			t.Fatalf("streamed tool use %v %q\n%s", tools, stop, a.body)
		}
	})

	t.Run("errors in Anthropic's shape", func(t *testing.T) {
		down(t, "anthropic")
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 400}); err != nil {
			t.Fatal(err)
		}
		a := messages(t, s.url, messagesBody(""))
		e := decode[anthropicError](t, a.body)
		if a.status != 400 || a.provider != "openai" || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "maximum context length") {
			t.Fatalf("OpenAI's 400: %d %s", a.status, a.body)
		}
		down(t, "anthropic", "openai", "ollama")
		a = messages(t, s.url, messagesBody(""))
		e = decode[anthropicError](t, a.body)
		if a.status != 529 || e.Type != "error" || e.Error.Type != "overloaded_error" || a.header.Get("Retry-After") == "" {
			t.Fatalf("every provider down: %d %v %s", a.status, a.header, a.body)
		}
		for _, tc := range []struct{ body, want string }{
			{`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
			{`not json`, "Messages request"},
			{`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, "messages"},
		} {
			a := messages(t, s.url, tc.body)
			e := decode[anthropicError](t, a.body)
			if a.status != 400 || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("%s: %d %s", tc.body, a.status, a.body)
			}
		}
	})

	t.Run("what OpenAI cannot do skips it: top_k", func(t *testing.T) {
		down(t, "anthropic")
		a := messages(t, s.url, messagesBody(`"top_k":5,`))
		if a.status != 529 || a.skipped() != "openai=untranslatable:top_k, ollama=untranslatable:top_k" || r.fp.Calls("openai") != 0 {
			t.Fatalf("%d skipped %q: %s", a.status, a.skipped(), a.body)
		}
	})

	t.Run("a stream that breaks after it began ends with Anthropic's error event", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 3}); err != nil {
			t.Fatal(err)
		}
		resetBreakers(t, r, s.agent)
		a := messages(t, s.url, messagesBody(`"stream":true,`))
		evs := a.events(t)
		last := evs[len(evs)-1]
		e := decode[anthropicError](t, string(last.Data))
		if a.status != 200 || a.provider != "anthropic" || last.Name != "error" || e.Error.Type != "overloaded_error" || strings.Contains(a.body, "message_stop") {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
		expectReported(t, r, s.agent, "anthropic", 1)
	})
}
