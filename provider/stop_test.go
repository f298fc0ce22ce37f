package provider

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestStopReasons_Mappings(t *testing.T) {
	for stop, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop",
		"max_tokens": "length", "model_context_window_exceeded": "length",
		"tool_use": "tool_calls", "refusal": "content_filter",
		"pause_turn": "", "": "", "something_new": "",
	} {
		got, ok := OpenAIFinishReason(stop)
		if got != want || ok != (want != "") {
			t.Errorf("OpenAIFinishReason(%q) = %q, %v; want %q", stop, got, ok, want)
		}
	}
	for finish, want := range map[string]string{
		"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
		"function_call": "", "": "",
	} {
		got, ok := AnthropicStopReason(finish)
		if got != want || ok != (want != "") {
			t.Errorf("AnthropicStopReason(%q) = %q, %v; want %q", finish, got, ok, want)
		}
	}
}

// The stop reasons travel through whole answers and streams, both ways.
func TestStopReasons_ThroughTranslation(t *testing.T) {
	anthropicContent := func(stop string) string {
		if stop == "tool_use" {
			return `[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}]`
		}
		return `[{"type":"text","text":"x"}]`
	}
	for _, tc := range []struct{ stop, seq, finish string }{
		{"end_turn", "null", "stop"},
		{"stop_sequence", `"END"`, "stop"},
		{"max_tokens", "null", "length"},
		{"model_context_window_exceeded", "null", "length"},
		{"tool_use", "null", "tool_calls"},
		{"refusal", "null", "content_filter"},
	} {
		t.Run("Anthropic "+tc.stop+" is OpenAI "+tc.finish, func(t *testing.T) {
			body := fmt.Sprintf(`{"id":"msg_1","type":"message","role":"assistant","model":"c","content":%s,"stop_reason":%q,"stop_sequence":%s,"usage":{"input_tokens":3,"output_tokens":2}}`,
				anthropicContent(tc.stop), tc.stop, tc.seq)
			out, err := AnthropicToOpenAIResponse([]byte(body), ResponseOptions{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Choices []struct {
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(out, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].FinishReason != tc.finish {
				t.Fatalf("answer %s: %v", out, err)
			}

			start := `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}`
			block := `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
			delta := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`
			if tc.stop == "tool_use" {
				block = `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}`
				delta = `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}`
			}
			s := NewAnthropicToOpenAIStream(StreamOptions{Clock: clock})
			finish := ""
			for _, ev := range []Event{
				{Name: "message_start", Data: []byte(start)},
				{Name: "content_block_start", Data: []byte(block)},
				{Name: "content_block_delta", Data: []byte(delta)},
				{Name: "content_block_stop", Data: []byte(`{"type":"content_block_stop","index":0}`)},
				{Name: "message_delta", Data: []byte(fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":%s},"usage":{"output_tokens":2}}`, tc.stop, tc.seq))},
				{Name: "message_stop", Data: []byte(`{"type":"message_stop"}`)},
			} {
				got, err := s.Event(ev)
				if err != nil {
					t.Fatalf("%s: %v", ev.Name, err)
				}
				for _, o := range got {
					var ch struct {
						Choices []struct {
							FinishReason *string `json:"finish_reason"`
						} `json:"choices"`
					}
					if !o.IsDone() && json.Unmarshal(o.Data, &ch) == nil && len(ch.Choices) == 1 && ch.Choices[0].FinishReason != nil {
						finish = *ch.Choices[0].FinishReason
					}
				}
			}
			if err := s.End(); err != nil || finish != tc.finish {
				t.Fatalf("stream: finish_reason %q, end %v", finish, err)
			}
		})
	}

	for _, tc := range []struct{ finish, stop string }{
		{"stop", "end_turn"},
		{"length", "max_tokens"},
		{"tool_calls", "tool_use"},
		{"content_filter", "refusal"},
	} {
		t.Run("OpenAI "+tc.finish+" is Anthropic "+tc.stop, func(t *testing.T) {
			msg := `{"role":"assistant","content":"x"}`
			delta := `{"role":"assistant","content":"x"}`
			if tc.finish == "tool_calls" {
				msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}`
				delta = `{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}`
			}
			body := fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"g","choices":[{"index":0,"message":%s,"finish_reason":%q}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`, msg, tc.finish)
			out, err := OpenAIToAnthropicResponse([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				StopReason string `json:"stop_reason"`
			}
			if err := json.Unmarshal(out, &m); err != nil || m.StopReason != tc.stop {
				t.Fatalf("answer %s: %v", out, err)
			}

			s := NewOpenAIToAnthropicStream()
			stop := ""
			for _, c := range []string{
				fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,"delta":%s,"finish_reason":null}]}`, delta),
				fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,"delta":{},"finish_reason":%q}]}`, tc.finish),
				"[DONE]",
			} {
				got, err := s.Chunk([]byte(c))
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				for _, ev := range got {
					var d struct {
						Delta struct {
							StopReason string `json:"stop_reason"`
						} `json:"delta"`
					}
					if ev.Name == "message_delta" && json.Unmarshal(ev.Data, &d) == nil {
						stop = d.Delta.StopReason
					}
				}
			}
			if err := s.End(); err != nil || stop != tc.stop {
				t.Fatalf("stream: stop_reason %q, end %v", stop, err)
			}
		})
	}
}
