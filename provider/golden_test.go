package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedClock is a Clock that always says the same time.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var clock = fixedClock(time.Unix(1741569952, 0))

var _ Clock = clock

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name; -update rewrites it.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (go test ./provider -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("%s differs (go test ./provider -update rewrites it):\n got: %s\nwant: %s", name, got, want)
	}
}

// pretty indents a JSON body for a golden file.
func pretty(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		tb.Fatalf("not JSON: %v: %s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// events reads every event of an SSE body, which must end cleanly.
func events(tb testing.TB, body []byte) []Event {
	tb.Helper()
	var out []Event
	r := bufio.NewReader(bytes.NewReader(body))
	for {
		ev, err := ReadEvent(r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("reading the stream: %v", err)
		}
		out = append(out, ev)
	}
}

// sse writes events as a stream.
func sse(evs []Event) []byte {
	var b bytes.Buffer
	for _, ev := range evs {
		b.Write(ev.Bytes())
	}
	return b.Bytes()
}

// stem is a fixture's name without its extension.
func stem(name string) string { return strings.TrimSuffix(name, filepath.Ext(name)) }

func TestGolden_OpenAIToAnthropicRequest(t *testing.T) {
	for _, tc := range []struct {
		in      string
		dropped []string
	}{
		{"openai_request_functions.json", nil},
		{"openai_request_tool_result.json", []string{"seed", "store"}},
		{"openai_request_images.json", []string{"messages[4].content[2].image_url.detail"}},
		{"openai_request_stream.json", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := OpenAIToAnthropicRequest(readTestdata(t, tc.in), AnthropicOptions{Model: "claude-sonnet-4-5", MaxTokens: 1024})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(r.Dropped, ",") != strings.Join(tc.dropped, ",") {
				t.Errorf("dropped %q, want %q", r.Dropped, tc.dropped)
			}
			golden(t, stem(tc.in)+".to_anthropic.golden.json", pretty(t, r.Body))
		})
	}
}

func TestGolden_AnthropicToOpenAIRequest(t *testing.T) {
	for _, in := range []string{"anthropic_request_tools.json", "anthropic_request_tool_result.json", "anthropic_request_stream.json"} {
		t.Run(in, func(t *testing.T) {
			r, err := AnthropicToOpenAIRequest(readTestdata(t, in), OpenAIOptions{Model: "gpt-4o-mini"})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Dropped) != 0 {
				t.Errorf("dropped %q", r.Dropped)
			}
			golden(t, stem(in)+".to_openai.golden.json", pretty(t, r.Body))
		})
	}
}

func TestGolden_AnthropicToOpenAIResponse(t *testing.T) {
	for _, in := range []string{"anthropic_response_tool_use.json", "anthropic_response_end_turn.json", "anthropic_response_parallel_tool_use.json"} {
		t.Run(in, func(t *testing.T) {
			body, err := AnthropicToOpenAIResponse(readTestdata(t, in), ResponseOptions{Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, stem(in)+".to_openai.golden.json", pretty(t, body))
		})
	}
}

func TestGolden_OpenAIToAnthropicResponse(t *testing.T) {
	for _, in := range []string{"openai_response_default.json", "openai_response_functions.json"} {
		t.Run(in, func(t *testing.T) {
			body, err := OpenAIToAnthropicResponse(readTestdata(t, in))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, stem(in)+".to_anthropic.golden.json", pretty(t, body))
		})
	}
}

// translateAnthropicStream runs a whole Anthropic stream through an
// AnthropicToOpenAIStream.
func translateAnthropicStream(tb testing.TB, body []byte, o StreamOptions) []Event {
	tb.Helper()
	s := NewAnthropicToOpenAIStream(o)
	var out []Event
	for _, ev := range events(tb, body) {
		got, err := s.Event(ev)
		if err != nil {
			tb.Fatalf("event %s %s: %v", ev.Name, ev.Data, err)
		}
		out = append(out, got...)
	}
	if err := s.End(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// translateOpenAIStream runs a whole OpenAI stream through an
// OpenAIToAnthropicStream.
func translateOpenAIStream(tb testing.TB, body []byte) []Event {
	tb.Helper()
	s := NewOpenAIToAnthropicStream()
	var out []Event
	for _, ev := range events(tb, body) {
		got, err := s.Chunk(ev.Data)
		if err != nil {
			tb.Fatalf("chunk %s: %v", ev.Data, err)
		}
		out = append(out, got...)
	}
	if err := s.End(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestGolden_AnthropicToOpenAIStream(t *testing.T) {
	for _, in := range []string{"anthropic_stream_tool_use.sse", "anthropic_stream_refusal.sse"} {
		t.Run(in, func(t *testing.T) {
			out := translateAnthropicStream(t, readTestdata(t, in), StreamOptions{IncludeUsage: true, Clock: clock})
			if last := out[len(out)-1]; !last.IsDone() {
				t.Fatalf("the last event is %s, not [DONE]", last.Data)
			}
			golden(t, stem(in)+".to_openai.golden.sse", sse(out))
		})
	}
}

func TestGolden_OpenAIToAnthropicStream(t *testing.T) {
	for _, in := range []string{"openai_stream_text.sse", "openai_stream_tool_calls.sse", "openai_stream_parallel_tool_calls.sse"} {
		t.Run(in, func(t *testing.T) {
			out := translateOpenAIStream(t, readTestdata(t, in))
			if last := out[len(out)-1]; last.Name != "message_stop" {
				t.Fatalf("the last event is %s, not message_stop", last.Name)
			}
			golden(t, stem(in)+".to_anthropic.golden.sse", sse(out))
		})
	}
}

// Error bodies, both ways: each provider's documented errors as the
// other's SDK would see them, by the status they came with.
func TestGolden_ErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		in     string
		status int
	}{
		{"openai_error_invalid_api_key.json", 401},
		{"openai_error_insufficient_quota.json", 429},
		{"openai_error_context_length.json", 400},
	} {
		t.Run(tc.in, func(t *testing.T) {
			golden(t, stem(tc.in)+".to_anthropic.golden.json", pretty(t, ToAnthropicError(tc.status, readTestdata(t, tc.in))))
		})
	}
	for _, tc := range []struct {
		in     string
		status int
	}{
		{"anthropic_error_overloaded.json", 529},
		{"anthropic_error_invalid_request.json", 400},
	} {
		t.Run(tc.in, func(t *testing.T) {
			golden(t, stem(tc.in)+".to_openai.golden.json", pretty(t, ToOpenAIError(tc.status, readTestdata(t, tc.in))))
		})
	}
}
