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
	typ, code, msg := ProviderError(body)
	kind := typ
	if code != "" {
		kind = code
	}
	switch {
	case kind != "" && msg != "":
		return head + ": " + clip(kind+": "+msg)
	case msg != "":
		return head + ": " + clip(msg)
	case kind != "":
		return head + ": " + clip(kind)
	}
	return head
}

// ProviderError reads an error body in OpenAI's shape
// ({"error":{"message","type","code"}}, code a string or a number),
// Anthropic's ({"type":"error","error":{"type","message"}}) or Ollama's
// ({"error":"…"}). Anything else gives empty strings.
func ProviderError(body []byte) (typ, code, msg string) {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 {
		return "", "", ""
	}
	if json.Unmarshal(e.Error, &msg) == nil {
		return "", "", msg
	}
	var d struct {
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	_ = json.Unmarshal(e.Error, &d)
	_ = json.Unmarshal(d.Code, &code)
	return d.Type, code, d.Message
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
