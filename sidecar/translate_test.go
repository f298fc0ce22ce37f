package sidecar

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var createdField = regexp.MustCompile(`"created": ?\d+`)

// golden compares got with testdata/translate/name, after pretty-printing
// JSON and zeroing the "created" timestamps.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = createdField.ReplaceAll(got, []byte(`"created":0`))
	path := filepath.Join("testdata", "translate", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sidecar -run Translate -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

func pretty(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return append(out, '\n')
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "translate", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTranslate_RequestToAnthropic(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"request.openai.json", "request.anthropic.golden.json"},
		{"request_stream.openai.json", "request_stream.anthropic.golden.json"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := parseChatRequest(readTestdata(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			body, err := toAnthropic(r, "claude-3-5-haiku-20241022", 4096)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.out, pretty(t, body))
		})
	}
}

func TestTranslate_ResponseFromAnthropic(t *testing.T) {
	body, err := fromAnthropic(readTestdata(t, "response.anthropic.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "response.openai.golden.json", pretty(t, body))
}

func TestTranslate_StreamFromAnthropic(t *testing.T) {
	s := &anthropicStream{includeUsage: true}
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readTestdata(t, "stream.anthropic.sse")))
	event := ""
	done := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			chunks, fin, err := s.event(event, []byte(line[6:]))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				out.WriteString("data: " + string(c) + "\n\n")
			}
			if fin {
				out.WriteString("data: [DONE]\n\n")
				done = true
			}
		}
	}
	if !done {
		t.Fatal("no [DONE] after message_stop")
	}
	golden(t, "stream.openai.golden.sse", []byte(out.String()))
}

func TestTranslate_StreamErrorIsAnError(t *testing.T) {
	s := &anthropicStream{}
	if _, _, err := s.event("message_start", []byte(`{"type":"message_start","message":{"id":"m","type":"message","model":"c","content":[]}}`)); err != nil {
		t.Fatal(err)
	}
	_, done, err := s.event("error", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if done || err == nil || !strings.Contains(err.Error(), "overloaded_error") {
		t.Fatalf("error event: done=%v err=%v", done, err)
	}
}

func TestTranslate_Refusals(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}`, "tools"},
		{`{"model":"m","messages":[{"role":"tool","content":"x","tool_call_id":"1"}]}`, "role"},
		{`{"model":"m","messages":[{"role":"system","content":"only a system prompt"}]}`, "at least one user"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input_audio"},
	} {
		r, err := parseChatRequest([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := toAnthropic(r, "c", 10); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.body, err, tc.want)
		}
	}
}
