package probe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// describe turns an error response into a short reason, understanding the
// OpenAI, Anthropic and Ollama error shapes; anything else (an HTML 502
// page) is just its status.
func describe(status int, body []byte) string {
	head := fmt.Sprintf("HTTP %d", status)
	var oa struct {
		Error json.RawMessage `json:"error"`
		Type  string          `json:"type"`
	}
	if json.Unmarshal(body, &oa) != nil || len(oa.Error) == 0 {
		return head
	}
	// Ollama: {"error":"model 'x' not found"}
	var s string
	if json.Unmarshal(oa.Error, &s) == nil {
		return head + ": " + clip(s)
	}
	// OpenAI {"error":{"message","type","code"}}, Anthropic
	// {"type":"error","error":{"type","message"}}. OpenAI's code may be a
	// number or a string.
	var e struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(oa.Error, &e) != nil {
		return head
	}
	kind := e.Type
	var code string
	if json.Unmarshal(e.Code, &code) == nil && code != "" {
		kind = code
	}
	switch {
	case kind != "" && e.Message != "":
		return head + ": " + clip(kind+": "+e.Message)
	case e.Message != "":
		return head + ": " + clip(e.Message)
	case kind != "":
		return head + ": " + clip(kind)
	}
	return head
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// MaxRetryAfter caps a Retry-After: a provider asking for more is
// misbehaving, and breakers cap the open time anyway.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads retry-after-ms, then Retry-After (seconds or an HTTP
// date), relative to now. 0 when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return min(time.Duration(ms*float64(time.Millisecond)), MaxRetryAfter)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return min(time.Duration(secs*float64(time.Second)), MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}
