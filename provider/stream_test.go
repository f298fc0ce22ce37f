package provider

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

const messageStart = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":5,"output_tokens":1}}}`

func TestAnthropicToOpenAIStream_Errors(t *testing.T) {
	t.Run("an error event is a StreamError, and no [DONE] comes", func(t *testing.T) {
		s := NewAnthropicToOpenAIStream(StreamOptions{})
		if _, err := s.Event(Event{Name: "message_start", Data: []byte(messageStart)}); err != nil {
			t.Fatal(err)
		}
		// anthropics/anthropic-sdk-go error_type_test.go
		out, err := s.Event(Event{Name: "error", Data: []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)})
		var se *StreamError
		if !errors.As(err, &se) || !errors.Is(err, ErrStream) || se.Type != "overloaded_error" || se.Message != "Overloaded" || len(out) != 0 {
			t.Fatalf("out %v err %v", out, err)
		}
		if AnthropicErrorStatus(se.Type) != 529 {
			t.Fatalf("status %d", AnthropicErrorStatus(se.Type))
		}
		if s.Done() || !errors.Is(s.End(), ErrStreamIncomplete) {
			t.Fatalf("done %v end %v", s.Done(), s.End())
		}
	})
	t.Run("a stream cut before message_stop is incomplete", func(t *testing.T) {
		s := NewAnthropicToOpenAIStream(StreamOptions{})
		for _, ev := range []Event{
			{Name: "message_start", Data: []byte(messageStart)},
			{Name: "content_block_start", Data: []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)},
			{Name: "content_block_delta", Data: []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`)},
		} {
			if _, err := s.Event(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.End(); !errors.Is(err, ErrStreamIncomplete) {
			t.Fatalf("End = %v", err)
		}
	})
	t.Run("message_stop without a stop reason is not a normal finish", func(t *testing.T) {
		s := NewAnthropicToOpenAIStream(StreamOptions{})
		_, _ = s.Event(Event{Name: "message_start", Data: []byte(messageStart)})
		out, err := s.Event(Event{Name: "message_stop", Data: []byte(`{"type":"message_stop"}`)})
		if !errors.Is(err, ErrInvalid) || len(out) != 0 {
			t.Fatalf("out %v err %v", out, err)
		}
	})
	for _, tc := range []struct {
		name string
		evs  []Event
		kind error
	}{
		{"a delta before message_start", []Event{{Name: "content_block_delta", Data: []byte(`{"index":0,"delta":{"type":"text_delta","text":"x"}}`)}}, ErrInvalid},
		{"a delta for a block that never started", []Event{{Name: "message_start", Data: []byte(messageStart)}, {Name: "content_block_delta", Data: []byte(`{"index":3,"delta":{"type":"text_delta","text":"x"}}`)}}, ErrInvalid},
		{"a server tool block", []Event{{Name: "message_start", Data: []byte(messageStart)}, {Name: "content_block_start", Data: []byte(`{"index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}`)}}, ErrUntranslatable},
		{"a citations delta", []Event{{Name: "message_start", Data: []byte(messageStart)}, {Name: "content_block_start", Data: []byte(`{"index":0,"content_block":{"type":"text","text":""}}`)}, {Name: "content_block_delta", Data: []byte(`{"index":0,"delta":{"type":"citations_delta","citation":{}}}`)}}, ErrUntranslatable},
		{"pause_turn", []Event{{Name: "message_start", Data: []byte(messageStart)}, {Name: "message_delta", Data: []byte(`{"delta":{"stop_reason":"pause_turn"},"usage":{"output_tokens":1}}`)}}, ErrUntranslatable},
		{"an event after message_stop", []Event{{Name: "message_start", Data: []byte(messageStart)}, {Name: "message_delta", Data: []byte(`{"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}`)}, {Name: "message_stop", Data: []byte(`{}`)}, {Name: "content_block_start", Data: []byte(`{"index":0,"content_block":{"type":"text","text":""}}`)}}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewAnthropicToOpenAIStream(StreamOptions{})
			var err error
			for _, ev := range tc.evs {
				if _, err = s.Event(ev); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
		})
	}
	t.Run("ping and an unknown event send nothing; a nameless event is named by its type", func(t *testing.T) {
		s := NewAnthropicToOpenAIStream(StreamOptions{Clock: clock})
		for _, ev := range []Event{{Name: "ping", Data: []byte(`{"type":"ping"}`)}, {Name: "message_start", Data: []byte(messageStart)}, {Name: "future_event", Data: []byte(`{}`)}} {
			if _, err := s.Event(ev); err != nil {
				t.Fatal(err)
			}
		}
		out, err := s.Event(Event{Data: []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}`)})
		if err != nil || len(out) != 1 || !strings.Contains(string(out[0].Data), `"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"f","arguments":""}}]`) {
			t.Fatalf("out %s err %v", out, err)
		}
	})
}

func TestOpenAIToAnthropicStream_Errors(t *testing.T) {
	const first = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	t.Run("an error chunk is a StreamError", func(t *testing.T) {
		s := NewOpenAIToAnthropicStream()
		if _, err := s.Chunk([]byte(first)); err != nil {
			t.Fatal(err)
		}
		_, err := s.Chunk([]byte(`{"error":{"message":"The server had an error","type":"server_error","param":null,"code":502}}`))
		var se *StreamError
		if !errors.As(err, &se) || se.Code != "502" || se.Type != "server_error" {
			t.Fatalf("err %v", err)
		}
		if !errors.Is(s.End(), ErrStreamIncomplete) {
			t.Fatal("ended normally")
		}
	})
	t.Run("[DONE] without a finish_reason is incomplete, not message_stop", func(t *testing.T) {
		s := NewOpenAIToAnthropicStream()
		_, _ = s.Chunk([]byte(first))
		out, err := s.Chunk([]byte("[DONE]"))
		if !errors.Is(err, ErrStreamIncomplete) || len(out) != 0 || s.Done() {
			t.Fatalf("out %v err %v", out, err)
		}
	})
	for _, tc := range []struct {
		name   string
		chunks []string
		kind   error
	}{
		{"a second choice", []string{`{"id":"c","choices":[{"index":1,"delta":{"content":"x"}}]}`}, ErrUntranslatable},
		{"a function_call delta", []string{`{"id":"c","choices":[{"index":0,"delta":{"function_call":{"name":"f"}}}]}`}, ErrUntranslatable},
		{"a tool call fragment with no id first", []string{`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`}, ErrInvalid},
		{"a fragment going back to a closed tool call", []string{
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":""}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}`,
		}, ErrUntranslatable},
		{"data after [DONE]", []string{first, `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, "[DONE]", first}, ErrInvalid},
		{"not JSON", []string{`{"id":`}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewOpenAIToAnthropicStream()
			var err error
			for _, c := range tc.chunks {
				if _, err = s.Chunk([]byte(c)); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
		})
	}
	t.Run("a refusal delta is text, and stop becomes refusal", func(t *testing.T) {
		s := NewOpenAIToAnthropicStream()
		var all []Event
		for _, c := range []string{
			`{"id":"chatcmpl-9","model":"g","choices":[{"index":0,"delta":{"role":"assistant","refusal":""}}]}`,
			`{"id":"chatcmpl-9","model":"g","choices":[{"index":0,"delta":{"refusal":"I can't."}}]}`,
			`{"id":"chatcmpl-9","model":"g","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			"[DONE]",
		} {
			out, err := s.Chunk([]byte(c))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out...)
		}
		got := string(sse(all))
		if !strings.Contains(got, `"text_delta","text":"I can't."`) || !strings.Contains(got, `"stop_reason":"refusal"`) || !s.Done() || s.End() != nil {
			t.Fatalf("%s", got)
		}
	})
}

func TestReadEvent(t *testing.T) {
	t.Run("names, multi-line data, comments, CR LF and the recorder's trailing blanks", func(t *testing.T) {
		r := bufio.NewReader(strings.NewReader(": keep-alive\n\nevent: a\r\ndata: {\"x\":1}   \r\n\r\nid: 7\nretry: 10\n\ndata:one\ndata: two\n\n"))
		ev, err := ReadEvent(r)
		if err != nil || ev.Name != "a" || string(ev.Data) != `{"x":1}   ` {
			t.Fatalf("%q %v", ev, err)
		}
		ev, err = ReadEvent(r)
		if err != nil || ev.Name != "" || string(ev.Data) != "one\ntwo" {
			t.Fatalf("%q %v", ev, err)
		}
		if _, err = ReadEvent(r); !errors.Is(err, io.EOF) {
			t.Fatalf("end: %v", err)
		}
	})
	t.Run("a stream cut inside an event is an unexpected EOF", func(t *testing.T) {
		for _, body := range []string{"data: {\"a\"", "data: {}\n", "event: message_stop\n"} {
			if _, err := ReadEvent(bufio.NewReader(strings.NewReader(body))); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%q: %v", body, err)
			}
		}
	})
	t.Run("events read through a small buffer are the same, and keep their bytes after later reads", func(t *testing.T) {
		body := "event: " + strings.Repeat("n", 40) + "\ndata: " + strings.Repeat("a", 100) + "\ndata: b\n\ndata: " + strings.Repeat("c", 17) + "\n\n"
		var evs [2][]Event
		for i, size := range []int{16, 4096} {
			r := bufio.NewReaderSize(strings.NewReader(body), size)
			for {
				ev, err := ReadEvent(r)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("buffer %d: %v", size, err)
				}
				evs[i] = append(evs[i], ev)
			}
		}
		want := []Event{{Name: strings.Repeat("n", 40), Data: []byte(strings.Repeat("a", 100) + "\nb")}, {Data: []byte(strings.Repeat("c", 17))}}
		for i := range evs {
			if len(evs[i]) != len(want) {
				t.Fatalf("%d events, want %d", len(evs[i]), len(want))
			}
			for j, ev := range evs[i] {
				if ev.Name != want[j].Name || string(ev.Data) != string(want[j].Data) {
					t.Errorf("event %d: %q, want %q", j, ev, want[j])
				}
			}
		}
	})
	t.Run("Append writes the event on the wire after what is there", func(t *testing.T) {
		for _, c := range []struct {
			ev   Event
			want string
		}{
			{Event{}, "data: \n\n"},
			{Event{Data: []byte("x")}, "data: x\n\n"},
			{Event{Name: "n", Data: []byte("a\n\nb\n")}, "event: n\ndata: a\ndata: \ndata: b\ndata: \n\n"},
			{Done, "data: [DONE]\n\n"},
		} {
			if got := c.ev.Append([]byte("head")); string(got) != "head"+c.want {
				t.Errorf("%q: %q, want %q", c.ev, got, "head"+c.want)
			}
			if got := c.ev.Bytes(); string(got) != c.want {
				t.Errorf("%q: Bytes %q, want %q", c.ev, got, c.want)
			}
		}
	})
	t.Run("an event over MaxEventSize is refused", func(t *testing.T) {
		body := "data: " + strings.Repeat("x", MaxEventSize) + "\n\n"
		if _, err := ReadEvent(bufio.NewReader(strings.NewReader(body))); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("Bytes writes what ReadEvent reads", func(t *testing.T) {
		in := Event{Name: "content_block_delta", Data: []byte("{\"a\":1}\n{\"b\":2}")}
		out, err := ReadEvent(bufio.NewReader(strings.NewReader(string(in.Bytes()))))
		if err != nil || out.Name != in.Name || string(out.Data) != string(in.Data) {
			t.Fatalf("%q %v", out, err)
		}
		if string(Done.Bytes()) != "data: [DONE]\n\n" || !Done.IsDone() {
			t.Fatalf("%q", Done.Bytes())
		}
	})
}
