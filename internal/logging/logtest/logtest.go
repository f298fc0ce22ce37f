// Package logtest checks the log lines of fusebox commands in tests: each
// line one JSON object, with a time in logging.TimeFormat and no key
// twice.
package logtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/logging"
)

// Line is one decoded log line.
type Line map[string]any

// Str is the string value of key, "" when absent.
func (l Line) Str(key string) string {
	s, _ := l[key].(string)
	return s
}

// millis is what logging.TimeFormat produces: milliseconds, a zone.
var millis = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$`)

// Parse decodes one line, failing when it is not a single JSON object,
// repeats a key, or lacks a time with milliseconds.
func Parse(line string) (Line, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %q", line)
	}
	out := Line{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%v: %q", err, line)
		}
		key := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%v: %q", err, line)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q twice: %s", key, line)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%v: %q", err, line)
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one object on a line: %q", line)
	}
	ts := out.Str("time")
	if !millis.MatchString(ts) {
		return nil, fmt.Errorf("time %q is not RFC 3339 with milliseconds: %s", ts, line)
	}
	if _, err := time.Parse(logging.TimeFormat, ts); err != nil {
		return nil, fmt.Errorf("time %q: %v", ts, err)
	}
	return out, nil
}

// Lines parses every non-empty line of s, failing the test on the first
// that Parse refuses.
func Lines(tb testing.TB, s string) []Line {
	tb.Helper()
	var out []Line
	for _, raw := range strings.Split(s, "\n") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		l, err := Parse(raw)
		if err != nil {
			tb.Fatalf("log line: %v", err)
		}
		out = append(out, l)
	}
	return out
}

// CheckComponents fails the test unless every line has exactly one
// component key (Parse already refuses two) and it is one of want.
func CheckComponents(tb testing.TB, lines []Line, want ...string) {
	tb.Helper()
	for _, l := range lines {
		c, ok := l["component"].(string)
		if !ok {
			tb.Fatalf("a line without a component: %v", l)
		}
		found := false
		for _, w := range want {
			found = found || c == w
		}
		if !found {
			tb.Fatalf("component %q, want one of %v: %v", c, want, l)
		}
	}
}

// Levels counts lines per level.
func Levels(lines []Line) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		n[l.Str("level")]++
	}
	return n
}

// Find returns the first line whose message is msg.
func Find(lines []Line, msg string) (Line, bool) {
	for _, l := range lines {
		if l.Str("message") == msg {
			return l, true
		}
	}
	return nil, false
}

// Sink collects what a command writes, safe for concurrent writes.
type Sink struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
