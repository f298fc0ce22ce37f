package provider

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		name, body          string
		shape               Shape
		typ, code, msg, raw string
	}{
		{"OpenAI's 429 insufficient_quota", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, ShapeOpenAI, "insufficient_quota", "insufficient_quota", "You exceeded your current quota", `"insufficient_quota"`},
		{"a 502 in OpenAI's shape with a numeric code", `{"error":{"message":"Bad gateway.","type":"cf_bad_gateway","param":null,"code":502}}`, ShapeOpenAI, "cf_bad_gateway", "502", "Bad gateway.", `502`},
		{"Anthropic's 529", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CUdgeEZVNjY7M6qwNV9k6"}`, ShapeAnthropic, "overloaded_error", "", "Overloaded", ""},
		{"Ollama's 404", `{"error":"model 'llama9' not found"}`, ShapeOllama, "", "", "model 'llama9' not found", ""},
		{"an HTML 502", "<html><head><title>502 Bad Gateway</title></head></html>", ShapeUnknown, "", "", "", ""},
		{"an empty body", "", ShapeUnknown, "", "", "", ""},
		{"a success body", `{"id":"chatcmpl-1","object":"chat.completion"}`, ShapeUnknown, "", "", "", ""},
		{"a code that is an object", `{"error":{"message":"m","code":{"x":1}}}`, ShapeOpenAI, "", "", "m", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ParseError([]byte(tc.body))
			if e.Shape != tc.shape || e.Type != tc.typ || e.CodeString() != tc.code || e.Message != tc.msg || string(e.Code) != tc.raw {
				t.Fatalf("got %+v (code %q), want shape %v type %q code %q message %q", e, e.CodeString(), tc.shape, tc.typ, tc.code, tc.msg)
			}
		})
	}
}

func TestErrorBodies(t *testing.T) {
	t.Run("OpenAI's shape, null param and code when empty", func(t *testing.T) {
		if got, want := string(OpenAIErrorBody("all providers are unavailable", "service_unavailable", "", "")), `{"error":{"message":"all providers are unavailable","type":"service_unavailable","param":null,"code":null}}`; got != want {
			t.Fatalf("got %s", got)
		}
		if got, want := string(OpenAIErrorBody("m", "invalid_request_error", "context_length_exceeded", "messages")), `{"error":{"message":"m","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`; got != want {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("Anthropic's shape", func(t *testing.T) {
		if got, want := string(AnthropicErrorBody("rate_limit_error", "slow down")), `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`; got != want {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("each documented status has its Anthropic type, and back", func(t *testing.T) {
		for status, typ := range map[int]string{400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"} {
			if got := AnthropicErrorType(status); got != typ {
				t.Errorf("%d: %s, want %s", status, got, typ)
			}
			if got := AnthropicErrorStatus(typ); got != status {
				t.Errorf("%s: %d, want %d", typ, got, status)
			}
		}
		if AnthropicErrorType(503) != "api_error" || AnthropicErrorType(422) != "invalid_request_error" || AnthropicErrorStatus("teapot_error") != 0 {
			t.Fatal("undocumented statuses")
		}
	})
	t.Run("an Anthropic error becomes OpenAI's shape", func(t *testing.T) {
		got := string(ToOpenAIError(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)))
		if want := `{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}}`; got != want {
			t.Fatalf("got %s", got)
		}
		got = string(ToOpenAIError(502, []byte("<html>bad gateway</html>")))
		if want := `{"error":{"message":"Bad Gateway","type":"api_error","param":null,"code":null}}`; got != want {
			t.Fatalf("got %s", got)
		}
		got = string(ToOpenAIError(502, []byte(`{"error":{"message":"upstream","type":"server_error","code":502}}`)))
		if want := `{"error":{"message":"upstream","type":"server_error","param":null,"code":502}}`; got != want {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("an OpenAI error becomes Anthropic's shape, quota as billing", func(t *testing.T) {
		for _, tc := range []struct {
			status     int
			body, want string
		}{
			{429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, `{"type":"error","error":{"type":"billing_error","message":"You exceeded your current quota"}}`},
			{429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`},
			{400, `{"error":{"message":"This model's maximum context length is 128000 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, `{"type":"error","error":{"type":"invalid_request_error","message":"This model's maximum context length is 128000 tokens"}}`},
			{503, `{"error":"server busy, please try again. maximum pending requests exceeded"}`, `{"type":"error","error":{"type":"api_error","message":"server busy, please try again. maximum pending requests exceeded"}}`},
			{529, ``, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		} {
			if got := string(ToAnthropicError(tc.status, []byte(tc.body))); got != tc.want {
				t.Errorf("%d %s:\n got %s\nwant %s", tc.status, tc.body, got, tc.want)
			}
		}
	})
	t.Run("error events", func(t *testing.T) {
		if got := string(AnthropicErrorEvent("overloaded_error", "Overloaded").Bytes()); got != "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n" {
			t.Fatalf("%q", got)
		}
		ev := OpenAIErrorEvent("the provider's stream failed", "fusebox_upstream_stream_error", "")
		if e := ParseError(ev.Data); ev.Name != "" || e.Shape != ShapeOpenAI || e.Type != "fusebox_upstream_stream_error" {
			t.Fatalf("%+v", e)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 10, 30, 16, 17, 37, 0, time.UTC)
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{"an HTTP date", http.Header{"Retry-After": {"Thu, 30 Oct 2025 16:18:37 GMT"}}, time.Minute},
		{"a date in the past", http.Header{"Retry-After": {"Thu, 30 Oct 2025 16:00:00 GMT"}}, 0},
		{"retry-after-ms first", http.Header{"Retry-After": {"30"}, "Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0},
		{"NaN", http.Header{"Retry-After": {"NaN"}, "Retry-After-Ms": {"NaN"}}, 0},
		{"a century, capped", http.Header{"Retry-After": {"3155760000"}}, MaxRetryAfter},
		{"absent", http.Header{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryAfter(tc.h, now); got != tc.want {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	// The headers of anthropics/anthropic-sdk-go's recorded response
	// (toolrunner/testdata/cassettes/tool_runner_basic.yaml), Date: Thu, 30
	// Oct 2025 16:17:37 GMT.
	anthropic := http.Header{}
	for k, v := range map[string]string{
		"Anthropic-Ratelimit-Input-Tokens-Limit": "200000", "Anthropic-Ratelimit-Input-Tokens-Remaining": "199000", "Anthropic-Ratelimit-Input-Tokens-Reset": "2025-10-30T16:17:36Z",
		"Anthropic-Ratelimit-Output-Tokens-Limit": "80000", "Anthropic-Ratelimit-Output-Tokens-Remaining": "80000", "Anthropic-Ratelimit-Output-Tokens-Reset": "2025-10-30T16:17:37Z",
		"Anthropic-Ratelimit-Requests-Limit": "4000", "Anthropic-Ratelimit-Requests-Remaining": "3997", "Anthropic-Ratelimit-Requests-Reset": "2025-10-30T16:17:35Z",
		"Anthropic-Ratelimit-Tokens-Limit": "280000", "Anthropic-Ratelimit-Tokens-Remaining": "279000", "Anthropic-Ratelimit-Tokens-Reset": "2025-10-30T16:17:36Z",
	} {
		anthropic.Set(k, v)
	}
	now := time.Date(2025, 10, 30, 16, 17, 37, 0, time.UTC)
	t.Run("Anthropic's four windows are read", func(t *testing.T) {
		rls := ParseRateLimits(anthropic, now)
		if len(rls) != 4 {
			t.Fatalf("%+v", rls)
		}
		want := map[string][2]int64{"requests": {4000, 3997}, "tokens": {280000, 279000}, "input-tokens": {200000, 199000}, "output-tokens": {80000, 80000}}
		for _, rl := range rls {
			if rl.Provider != "anthropic" || want[rl.Name] != [2]int64{rl.Limit, rl.Remaining} || rl.Reset.IsZero() {
				t.Errorf("%+v", rl)
			}
		}
		if Exhausted(anthropic, now) != 0 {
			t.Fatal("nothing is exhausted")
		}
	})
	t.Run("an exhausted Anthropic window waits until its reset", func(t *testing.T) {
		h := anthropic.Clone()
		h.Set("Anthropic-Ratelimit-Output-Tokens-Remaining", "0")
		h.Set("Anthropic-Ratelimit-Output-Tokens-Reset", "2025-10-30T16:18:07Z")
		if got := Exhausted(h, now); got != 30*time.Second {
			t.Fatalf("%v", got)
		}
		if got := RetryIn(h, now); got != 30*time.Second {
			t.Fatalf("RetryIn %v", got)
		}
		h.Set("Retry-After", "45")
		if got := RetryIn(h, now); got != 45*time.Second {
			t.Fatalf("RetryIn with Retry-After %v", got)
		}
	})
	// The example in OpenAI's rate-limit guide.
	openai := http.Header{}
	for k, v := range map[string]string{
		"x-ratelimit-limit-requests": "60", "x-ratelimit-limit-tokens": "150000",
		"x-ratelimit-remaining-requests": "59", "x-ratelimit-remaining-tokens": "149984",
		"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s",
	} {
		openai.Set(k, v)
	}
	t.Run("OpenAI's two windows are read, resets as durations", func(t *testing.T) {
		rls := ParseRateLimits(openai, now)
		if len(rls) != 2 || rls[0].Name != "requests" || rls[0].Limit != 60 || rls[0].Remaining != 59 || !rls[0].Reset.Equal(now.Add(time.Second)) ||
			rls[1].Name != "tokens" || rls[1].Remaining != 149984 || !rls[1].Reset.Equal(now.Add(6*time.Minute)) {
			t.Fatalf("%+v", rls)
		}
		if Exhausted(openai, now) != 0 {
			t.Fatal("nothing is exhausted")
		}
	})
	t.Run("OpenAI exhausted: the longest exhausted window", func(t *testing.T) {
		h := openai.Clone()
		h.Set("x-ratelimit-remaining-requests", "0")
		h.Set("x-ratelimit-reset-requests", "20ms")
		if got := Exhausted(h, now); got != 20*time.Millisecond {
			t.Fatalf("%v", got)
		}
		h.Set("x-ratelimit-remaining-tokens", "0")
		if got := Exhausted(h, now); got != 6*time.Minute {
			t.Fatalf("%v", got)
		}
		h.Set("x-ratelimit-reset-tokens", "1h2m3.5s")
		if got := Exhausted(h, now); got != time.Hour+2*time.Minute+3500*time.Millisecond {
			t.Fatalf("%v", got)
		}
	})
	t.Run("exhausted with an unreadable or past reset is nothing to wait for", func(t *testing.T) {
		h := http.Header{"X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"soon"}}
		h.Set("anthropic-ratelimit-requests-remaining", "0")
		h.Set("anthropic-ratelimit-requests-reset", "2025-10-30T16:00:00Z")
		if got := Exhausted(h, now); got != 0 {
			t.Fatalf("%v", got)
		}
		if rls := ParseRateLimits(h, now); len(rls) != 2 || rls[0].Limit != -1 {
			t.Fatalf("%+v", rls)
		}
	})
	t.Run("no headers, no windows", func(t *testing.T) {
		if rls := ParseRateLimits(http.Header{}, now); len(rls) != 0 || !rls.ExhaustedUntil().IsZero() {
			t.Fatalf("%+v", rls)
		}
	})
}

func TestIDs(t *testing.T) {
	for in, want := range map[string]string{"msg_01XF": "chatcmpl-msg_01XF", "chatcmpl-abc": "chatcmpl-abc"} {
		if got := openAICompletionID(in); got != want {
			t.Errorf("openAICompletionID(%q) = %q", in, got)
		}
	}
	for in, want := range map[string]string{"chatcmpl-msg_01XF": "msg_01XF", "chatcmpl-abc": "msg_chatcmpl-abc", "msg_1": "msg_1"} {
		if got := anthropicMessageID(in); got != want {
			t.Errorf("anthropicMessageID(%q) = %q", in, got)
		}
	}
	// A hashed id is the same every time: a tool_use and the tool_result
	// that answers it must match.
	hashed, again := anthropicToolID("a.b"), anthropicToolID(strings.Clone("a.b"))
	if anthropicToolID("call_FXoAjBUMcVv1k40fficJ9cSs") != "call_FXoAjBUMcVv1k40fficJ9cSs" || hashed == "a.b" || hashed != again || hashed == anthropicToolID("a:b") {
		t.Fatal("tool ids")
	}
	var v any
	if json.Unmarshal([]byte(`"`+anthropicToolID("")+`"`), &v) != nil || anthropicToolID("") == "" {
		t.Fatal("empty id")
	}
}
