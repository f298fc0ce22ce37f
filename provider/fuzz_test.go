package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// typed fails unless err is nil or one of the package's typed errors.
func typed(t *testing.T, err error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrUntranslatable) || errors.Is(err, ErrStream) || errors.Is(err, ErrStreamIncomplete) {
		return
	}
	t.Fatalf("untyped error %T: %v", err, err)
}

func wantJSONObject(t *testing.T, b []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("output is not a JSON object: %v: %s", err, b)
	}
}

// seeds adds every fixture whose name matches glob.
func seeds(f *testing.F, glob string) {
	names, _ := filepath.Glob(filepath.Join("testdata", glob))
	names = slices.DeleteFunc(names, func(n string) bool { return strings.Contains(n, ".golden.") })
	if len(names) == 0 {
		f.Fatalf("no fixture matches %s", glob)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzOpenAIToAnthropicRequest(f *testing.F) {
	seeds(f, "openai_request_*.json")
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}],"stop":7}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"system","content":null}],"max_tokens":-1,"temperature":"hot"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"","type":"function","function":{"name":"f","arguments":"{\"a\":[1,{}]}"}}]},{"role":"tool","tool_call_id":"é","content":[null]}],"tool_choice":{"type":"function"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := OpenAIToAnthropicRequest(body, AnthropicOptions{SystemInMessages: len(body)%2 == 0})
		typed(t, err)
		if err != nil {
			return
		}
		wantJSONObject(t, r.Body)
		back, err := AnthropicToOpenAIRequest(r.Body, OpenAIOptions{})
		typed(t, err)
		if err == nil {
			wantJSONObject(t, back.Body)
		}
	})
}

func FuzzAnthropicToOpenAIRequest(f *testing.F) {
	seeds(f, "anthropic_request_*.json")
	f.Add([]byte(`{"model":"m","max_tokens":1e400,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[]}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":3,"system":[{"type":"text"}],"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"x","name":"y","input":[]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := AnthropicToOpenAIRequest(body, OpenAIOptions{LegacyMaxTokens: len(body)%2 == 0})
		typed(t, err)
		if err != nil {
			return
		}
		wantJSONObject(t, r.Body)
		back, err := OpenAIToAnthropicRequest(r.Body, AnthropicOptions{})
		typed(t, err)
		if err == nil {
			wantJSONObject(t, back.Body)
		}
	})
}

func FuzzAnthropicToOpenAIResponse(f *testing.F) {
	seeds(f, "anthropic_response_*.json")
	f.Add([]byte(`{"id":"m","type":"message","content":[{"type":"tool_use","id":"a","name":"b","input":"x"}],"stop_reason":"tool_use"}`))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := AnthropicToOpenAIResponse(body, ResponseOptions{Clock: clock})
		typed(t, err)
		if err == nil {
			wantJSONObject(t, out)
		}
	})
}

func FuzzOpenAIToAnthropicResponse(f *testing.F) {
	seeds(f, "openai_response_*.json")
	f.Add([]byte(`{"id":"c","object":"chat.completion","choices":[{"message":{"tool_calls":[{"type":"function","id":"1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := OpenAIToAnthropicResponse(body)
		typed(t, err)
		if err == nil {
			wantJSONObject(t, out)
		}
	})
}

// readAll feeds a stream's events to fn until the stream or fn fails.
func readAll(t *testing.T, body []byte, fn func(Event) ([]Event, error)) {
	r := bufio.NewReader(bytes.NewReader(body))
	for range 10000 {
		ev, err := ReadEvent(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				typed(t, err)
			}
			return
		}
		out, err := fn(ev)
		typed(t, err)
		if err != nil {
			return
		}
		for _, o := range out {
			if !o.IsDone() {
				wantJSONObject(t, o.Data)
			}
		}
	}
}

func FuzzAnthropicToOpenAIStream(f *testing.F) {
	seeds(f, "anthropic_stream_*.sse")
	f.Add([]byte("event: message_start\ndata: {\"message\":{}}\n\nevent: message_stop\ndata: {}\n\n"))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := NewAnthropicToOpenAIStream(StreamOptions{IncludeUsage: true, Clock: clock})
		readAll(t, body, s.Event)
		if err := s.End(); err != nil && !errors.Is(err, ErrStreamIncomplete) {
			t.Fatalf("End: %v", err)
		}
	})
}

func FuzzOpenAIToAnthropicStream(f *testing.F) {
	seeds(f, "openai_stream_*.sse")
	f.Add([]byte("data: {\"error\":{\"code\":502}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1,\"id\":\"a\",\"function\":{\"name\":\"b\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := NewOpenAIToAnthropicStream()
		readAll(t, body, func(ev Event) ([]Event, error) { return s.Chunk(ev.Data) })
		if err := s.End(); err != nil && !errors.Is(err, ErrStreamIncomplete) {
			t.Fatalf("End: %v", err)
		}
	})
}

func FuzzParseError(f *testing.F) {
	f.Add([]byte(`{"error":{"message":"m","type":"t","param":null,"code":502}}`))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add([]byte(`{"error":"model 'x' not found"}`))
	f.Add([]byte(`<html>502</html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := ParseError(body)
		if len(e.Code) > 0 {
			var v any
			if json.Unmarshal(e.Code, &v) != nil {
				t.Fatalf("code %q is not JSON", e.Code)
			}
		}
		_ = e.CodeString()
		wantJSONObject(t, ToOpenAIError(500, body))
		wantJSONObject(t, ToAnthropicError(529, body))
	})
}

func FuzzRetryIn(f *testing.F) {
	f.Add("30", "1500", "0", "6m0s", "0", "2025-10-30T16:18:07Z")
	f.Add("Thu, 30 Oct 2025 16:18:37 GMT", "", "-1", "-5s", "x", "not a time")
	f.Add("", "", " 0 ", "20ms", "+0", "2025-10-30T16:18:07Z")
	f.Add("", "", "00", "1s", "-0", "2025-10-30T16:19:07Z")
	f.Fuzz(func(t *testing.T, retryAfter, retryAfterMS, remaining, reset, anthropicRemaining, anthropicReset string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("retry-after-ms", retryAfterMS)
		h.Set("x-ratelimit-remaining-tokens", remaining)
		h.Set("x-ratelimit-reset-tokens", reset)
		h.Set("anthropic-ratelimit-output-tokens-remaining", anthropicRemaining)
		h.Set("anthropic-ratelimit-output-tokens-reset", anthropicReset)
		now := time.Date(2025, 10, 30, 16, 17, 37, 0, time.UTC)
		for _, d := range []time.Duration{RetryAfter(h, now), Exhausted(h, now), RetryIn(h, now)} {
			if d < 0 || d > MaxRetryAfter {
				t.Fatalf("%v out of range", d)
			}
		}
		// Exhausted reads only the remaining counts first: it says what
		// every window read says.
		var want time.Duration
		if until := ParseRateLimits(h, now).ExhaustedUntil(); until.After(now) {
			want = min(until.Sub(now), MaxRetryAfter)
		}
		if got := Exhausted(h, now); got != want {
			t.Fatalf("Exhausted %v, the windows say %v", got, want)
		}
	})
}
