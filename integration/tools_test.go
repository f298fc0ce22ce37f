//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/provider"
)

const (
	weatherTool          = `{"type":"function","function":{"name":"get_weather","description":"The weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`
	anthropicWeatherTool = `{"name":"get_weather","description":"The weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`
)

// turn is one answer of a conversation, as the client assembled it.
type turn struct {
	status   int
	provider string
	text     string
	callID   string
	callName string
	args     string
	stop     string // finish_reason or stop_reason
	took     time.Duration
}

// sidecarPost sends one request to a sidecar and reads the answer whole.
func sidecarPost(t *testing.T, url, path, body string, headers ...string) (*http.Response, []byte, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", path, err)
	}
	return resp, b, time.Since(start)
}

func sseEvents(t *testing.T, b []byte) []provider.Event {
	t.Helper()
	var out []provider.Event
	rd := bufio.NewReader(bytes.NewReader(b))
	for {
		ev, err := provider.ReadEvent(rd)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("the stream does not read: %v\n%s", err, b)
		}
		out = append(out, ev)
	}
}

// chatTurn sends a chat completions request and assembles the answer,
// streamed or not.
func chatTurn(t *testing.T, url string, stream bool, msgs string) turn {
	t.Helper()
	body := `{"model":"gpt-4o-mini","stream":` + jsonBool(stream) + `,"messages":[` + msgs + `],"tools":[` + weatherTool + `]}`
	resp, b, took := sidecarPost(t, url, "/v1/chat/completions", body)
	tr := turn{status: resp.StatusCode, provider: resp.Header.Get("X-Fusebox-Provider"), took: took}
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	type call struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if !stream {
		var c struct {
			Choices []struct {
				Message struct {
					Content   *string `json:"content"`
					ToolCalls []call  `json:"tool_calls"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(b, &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("not a completion: %s", b)
		}
		m := c.Choices[0].Message
		if m.Content != nil {
			tr.text = *m.Content
		}
		if len(m.ToolCalls) > 0 {
			tr.callID, tr.callName, tr.args = m.ToolCalls[0].ID, m.ToolCalls[0].Function.Name, m.ToolCalls[0].Function.Arguments
		}
		tr.stop = c.Choices[0].FinishReason
		return tr
	}
	evs := sseEvents(t, b)
	if len(evs) == 0 || !evs[len(evs)-1].IsDone() {
		t.Fatalf("a stream with no [DONE]: %s", b)
	}
	for _, ev := range evs[:len(evs)-1] {
		var c struct {
			Choices []struct {
				Delta struct {
					Content   *string `json:"content"`
					ToolCalls []call  `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatalf("a chunk that is not JSON: %s", ev.Data)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				tr.text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.ID != "" {
					tr.callID = tc.ID
				}
				tr.callName += tc.Function.Name
				tr.args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				tr.stop = *ch.FinishReason
			}
		}
	}
	return tr
}

// messagesTurn sends an Anthropic Messages request and assembles the
// answer, streamed or not.
func messagesTurn(t *testing.T, url string, stream bool, msgs string) turn {
	t.Helper()
	body := `{"model":"claude-3-5-haiku-latest","max_tokens":300,"stream":` + jsonBool(stream) + `,"messages":[` + msgs + `],"tools":[` + anthropicWeatherTool + `]}`
	resp, b, took := sidecarPost(t, url, "/v1/messages", body, "anthropic-version", "2023-06-01")
	tr := turn{status: resp.StatusCode, provider: resp.Header.Get("X-Fusebox-Provider"), took: took}
	if resp.StatusCode != 200 {
		t.Fatalf("messages: %d %s", resp.StatusCode, b)
	}
	type block struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	if !stream {
		var m struct {
			Content    []block `json:"content"`
			StopReason string  `json:"stop_reason"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not a message: %s", b)
		}
		for _, c := range m.Content {
			switch c.Type {
			case "text":
				tr.text += c.Text
			case "tool_use":
				tr.callID, tr.callName, tr.args = c.ID, c.Name, string(c.Input)
			}
		}
		tr.stop = m.StopReason
		return tr
	}
	evs := sseEvents(t, b)
	if len(evs) == 0 || evs[len(evs)-1].Name != "message_stop" {
		t.Fatalf("a stream with no message_stop: %s", b)
	}
	for _, ev := range evs {
		var e struct {
			ContentBlock block `json:"content_block"`
			Delta        struct {
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
				tr.callID, tr.callName = e.ContentBlock.ID, e.ContentBlock.Name
			}
		case "content_block_delta":
			tr.text += e.Delta.Text
			tr.args += e.Delta.PartialJSON
		case "message_delta":
			tr.stop = e.Delta.StopReason
		}
	}
	return tr
}

func jsonBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Suite: tools on the fallback. With the primary down, a tool-calling
// conversation (the call, the tool's result, the final answer) completes
// on the fallback, translated both ways, streamed and not: an OpenAI
// client served by Anthropic, and an Anthropic client (/v1/messages)
// served by OpenAI.
func TestSuiteTools_ConversationOnTheFallback(t *testing.T) {
	e := newEnv(t, options{})
	url := e.agents[0].url
	eventually(t, 30*time.Second, "the sidecar serves", func() bool {
		resp, err := httpClient.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	e.fault("openai", `{"kind":"status","status":503}`)
	for _, stream := range []bool{false, true} {
		user := `{"role":"user","content":"Weather in Paris?"}`
		call := chatTurn(t, url, stream, user)
		if call.provider != "anthropic" || call.stop != "tool_calls" || call.callName != "get_weather" || call.args != `{"city":"fake"}` || call.callID == "" {
			t.Fatalf("stream=%v, the call: %+v", stream, call)
		}
		assistant := `{"role":"assistant","content":` + jsonString(call.text) + `,"tool_calls":[{"id":"` + call.callID + `","type":"function","function":{"name":"get_weather","arguments":` + jsonString(call.args) + `}}]}`
		result := `{"role":"tool","tool_call_id":"` + call.callID + `","content":"18 degrees"}`
		final := chatTurn(t, url, stream, user+","+assistant+","+result)
		if final.provider != "anthropic" || final.stop != "stop" || final.text != fakeprovider.ToolAnswer("18 degrees") {
			t.Fatalf("stream=%v, the answer: %+v", stream, final)
		}
		t.Logf("suite tools: an OpenAI client's tool conversation (stream=%v) completed on Anthropic: the call in %s, the answer in %s",
			stream, call.took.Round(time.Millisecond), final.took.Round(time.Millisecond))
	}
	e.heal("openai")

	e.fault("anthropic", `{"kind":"status","status":529}`)
	for _, stream := range []bool{false, true} {
		user := `{"role":"user","content":"Weather in Paris?"}`
		call := messagesTurn(t, url, stream, user)
		if call.provider != "openai" || call.stop != "tool_use" || call.callName != "get_weather" || call.args != `{"city":"fake"}` || call.callID == "" {
			t.Fatalf("stream=%v, the call: %+v", stream, call)
		}
		assistant := `{"role":"assistant","content":[{"type":"tool_use","id":"` + call.callID + `","name":"get_weather","input":` + call.args + `}]}`
		result := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + call.callID + `","content":"18 degrees"}]}`
		final := messagesTurn(t, url, stream, user+","+assistant+","+result)
		if final.provider != "openai" || final.stop != "end_turn" || final.text != fakeprovider.ToolAnswer("18 degrees") {
			t.Fatalf("stream=%v, the answer: %+v", stream, final)
		}
		t.Logf("suite tools: an Anthropic client's tool conversation (stream=%v) completed on OpenAI: the call in %s, the answer in %s",
			stream, call.took.Round(time.Millisecond), final.took.Round(time.Millisecond))
	}
	t.Logf("suite tools: the failing primaries got %.0f (OpenAI, 503) and %.0f (Anthropic, 529) calls from this sidecar over the 8 turns",
		metric(t, url, `fusebox_sidecar_upstream_calls_total{provider="openai",result="503"}`),
		metric(t, url, `fusebox_sidecar_upstream_calls_total{provider="anthropic",result="529"}`))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
