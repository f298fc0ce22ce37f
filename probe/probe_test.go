package probe_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/probe"
)

const secret = "sk-test-do-not-leak-1234"

func env(k string) string {
	switch k {
	case "OPENAI_KEY", "ANTHROPIC_KEY", "HEALTH_TOKEN":
		return secret
	}
	return ""
}

// provider answers like a provider would; it records the last request.
type provider struct {
	handler func(w http.ResponseWriter, r *http.Request, body map[string]any)
	last    atomic.Pointer[http.Request]
	body    atomic.Pointer[map[string]any]
}

func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body map[string]any)) (*provider, string) {
	t.Helper()
	p := &provider{handler: h}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("canary sent a body that is not JSON: %q", b)
			}
		}
		p.last.Store(r)
		p.body.Store(&body)
		p.handler(w, r, body)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func jsonReply(w http.ResponseWriter, status int, headers map[string]string, body string) {
	w.Header().Set("Content-Type", "application/json")
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func mustNew(t *testing.T, s probe.Spec) probe.Canary {
	t.Helper()
	c, err := probe.New(s, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(t *testing.T, r probe.Result, ok bool, reason string) {
	t.Helper()
	if r.OK != ok || !strings.Contains(r.Reason, reason) {
		t.Fatalf("result = %+v, want ok=%v and a reason containing %q", r, ok, reason)
	}
	if strings.Contains(r.Reason, secret) {
		t.Fatalf("the API key leaked into the reason: %q", r.Reason)
	}
}

const openAIOK = `{"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}`

func TestOpenAICanary(t *testing.T) {
	ctx := context.Background()
	t.Run("healthy: 200 with a message, asked the right way", func(t *testing.T) {
		p, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { jsonReply(w, 200, nil, openAIOK) })
		r := mustNew(t, probe.Spec{Kind: probe.KindOpenAI, URL: url + "/v1", APIKeyEnv: "OPENAI_KEY", Model: "gpt-4o-mini"}).Probe(ctx)
		check(t, r, true, "")
		req, body := p.last.Load(), *p.body.Load()
		if req.URL.Path != "/v1/chat/completions" || req.Method != "POST" || req.Header.Get("Authorization") != "Bearer "+secret {
			t.Fatalf("request %s %s auth=%q", req.Method, req.URL.Path, req.Header.Get("Authorization"))
		}
		msgs, _ := body["messages"].([]any)
		first, _ := msgs[0].(map[string]any)
		if body["model"] != "gpt-4o-mini" || body["max_completion_tokens"] != float64(5) || first["content"] != probe.DefaultPrompt || first["role"] != "user" {
			t.Fatalf("body = %v", body)
		}
	})
	cases := []struct {
		name, reason string
		status       int
		headers      map[string]string
		body         string
		retryAfter   time.Duration
	}{
		{"503 with Retry-After", "HTTP 503: server_error: The server is overloaded", 503, map[string]string{"Retry-After": "7"},
			`{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}`, 7 * time.Second},
		{"429 rate limit", "HTTP 429: rate_limit_exceeded: Rate limit reached", 429, map[string]string{"retry-after-ms": "1500"},
			`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, 1500 * time.Millisecond},
		{"429 quota", "insufficient_quota", 429, nil,
			`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, 0},
		{"502 HTML page", "HTTP 502", 502, nil, `<html><body>Bad gateway</body></html>`, 0},
		{"502 numeric code", "HTTP 502: Bad gateway", 502, nil, `{"error":{"message":"Bad gateway","code":502}}`, 0},
		{"401", "HTTP 401: invalid_api_key", 401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`, 0},
		{"200 empty message", "empty message", 200, nil, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"length"}]}`, 0},
		{"200 null content", "empty message", 200, nil, `{"choices":[{"message":{"role":"assistant","content":null}}]}`, 0},
		{"200 not JSON", "not a chat completion", 200, nil, `OK`, 0},
	}
	for _, tc := range cases {
		t.Run("unhealthy: "+tc.name, func(t *testing.T) {
			_, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				jsonReply(w, tc.status, tc.headers, tc.body)
			})
			r := mustNew(t, probe.Spec{Kind: probe.KindOpenAI, URL: url, APIKeyEnv: "OPENAI_KEY", Model: "m"}).Probe(ctx)
			check(t, r, false, tc.reason)
			if r.RetryAfter != tc.retryAfter || r.Status != tc.status {
				t.Fatalf("status %d retry-after %s, want %d %s", r.Status, r.RetryAfter, tc.status, tc.retryAfter)
			}
		})
	}
	t.Run("unhealthy: no answer within the timeout", func(t *testing.T) {
		release := make(chan struct{})
		_, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		r := mustNew(t, probe.Spec{Kind: probe.KindOpenAI, URL: url, Model: "m", Timeout: 100 * time.Millisecond}).Probe(ctx)
		check(t, r, false, "no answer within 100ms")
	})
	t.Run("unhealthy: connection refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		r := mustNew(t, probe.Spec{Kind: probe.KindOpenAI, URL: "http://" + addr, Model: "m"}).Probe(ctx)
		check(t, r, false, "connection failed")
	})
}

const anthropicOK = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[{"type":"text","text":"OK"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}`

func TestAnthropicCanary(t *testing.T) {
	ctx := context.Background()
	t.Run("healthy: 200 with text, asked the right way", func(t *testing.T) {
		p, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { jsonReply(w, 200, nil, anthropicOK) })
		r := mustNew(t, probe.Spec{Kind: probe.KindAnthropic, URL: url, APIKeyEnv: "ANTHROPIC_KEY", Model: "claude-haiku"}).Probe(ctx)
		check(t, r, true, "")
		req, body := p.last.Load(), *p.body.Load()
		if req.URL.Path != "/v1/messages" || req.Header.Get("x-api-key") != secret || req.Header.Get("anthropic-version") != "2023-06-01" {
			t.Fatalf("request %s headers %v", req.URL.Path, req.Header)
		}
		if body["model"] != "claude-haiku" || body["max_tokens"] != float64(5) {
			t.Fatalf("body = %v", body)
		}
	})
	for _, tc := range []struct {
		name, body, reason string
		status             int
	}{
		{"529 overloaded", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "HTTP 529: overloaded_error: Overloaded", 529},
		{"500 api error", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, "HTTP 500: api_error", 500},
		{"402 billing", `{"type":"error","error":{"type":"billing_error","message":"Your credit balance is too low"}}`, "billing_error", 402},
		{"200 empty content", `{"id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":"max_tokens"}`, "empty message", 200},
		{"200 error-typed body", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "not a message", 200},
	} {
		t.Run("unhealthy: "+tc.name, func(t *testing.T) {
			_, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { jsonReply(w, tc.status, nil, tc.body) })
			check(t, mustNew(t, probe.Spec{Kind: probe.KindAnthropic, URL: url, APIKeyEnv: "ANTHROPIC_KEY", Model: "m"}).Probe(ctx), false, tc.reason)
		})
	}
}

func TestOllamaCanary(t *testing.T) {
	ctx := context.Background()
	t.Run("healthy: the model list", func(t *testing.T) {
		p, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			jsonReply(w, 200, nil, `{"models":[{"name":"llama3.2:1b","model":"llama3.2:1b","size":1}]}`)
		})
		check(t, mustNew(t, probe.Spec{Kind: probe.KindOllama, URL: url}).Probe(ctx), true, "")
		if req := p.last.Load(); req.Method != "GET" || req.URL.Path != "/api/tags" {
			t.Fatalf("request %s %s", req.Method, req.URL.Path)
		}
	})
	t.Run("healthy: a tiny chat", func(t *testing.T) {
		p, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			jsonReply(w, 200, nil, `{"model":"llama3.2:1b","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"OK"},"done":true,"done_reason":"stop"}`)
		})
		check(t, mustNew(t, probe.Spec{Kind: probe.KindOllama, URL: url, Model: "llama3.2:1b"}).Probe(ctx), true, "")
		body := *p.body.Load()
		if p.last.Load().URL.Path != "/api/chat" || body["stream"] != false || body["model"] != "llama3.2:1b" {
			t.Fatalf("chat request %s %v", p.last.Load().URL.Path, body)
		}
	})
	for _, tc := range []struct {
		name, model, body, reason string
		status                    int
	}{
		{"503 queue full", "", `{"error":"server busy, please try again.  maximum pending requests exceeded"}`, "HTTP 503: server busy", 503},
		{"404 model", "nope", `{"error":"model 'nope' not found"}`, "HTTP 404: model 'nope' not found", 404},
		{"200 with an error", "m", `{"error":"llama runner process has terminated"}`, "HTTP 200 with an error: llama runner", 200},
		{"200 not a model list", "", `{"version":"0.5.0"}`, "not a model list", 200},
	} {
		t.Run("unhealthy: "+tc.name, func(t *testing.T) {
			_, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { jsonReply(w, tc.status, nil, tc.body) })
			check(t, mustNew(t, probe.Spec{Kind: probe.KindOllama, URL: url, Model: tc.model}).Probe(ctx), false, tc.reason)
		})
	}
}

func TestHTTPCanary(t *testing.T) {
	ctx := context.Background()
	var status atomic.Int32
	status.Store(204)
	p, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) { w.WriteHeader(int(status.Load())) })
	c := mustNew(t, probe.Spec{Kind: probe.KindHTTP, URL: url + "/health", Method: "POST", Body: `{"ping":true}`,
		Headers: map[string]string{"X-Probe": "fusebox"}, HeaderEnv: map[string]string{"Authorization": "HEALTH_TOKEN"}})
	check(t, c.Probe(ctx), true, "")
	req := p.last.Load()
	if req.Method != "POST" || req.URL.Path != "/health" || req.Header.Get("X-Probe") != "fusebox" || req.Header.Get("Authorization") != secret {
		t.Fatalf("request %s %s %v", req.Method, req.URL.Path, req.Header)
	}
	status.Store(500)
	check(t, c.Probe(ctx), false, "HTTP 500")

	only := mustNew(t, probe.Spec{Kind: probe.KindHTTP, URL: url, ExpectStatus: []int{500}})
	check(t, only.Probe(ctx), true, "")
}

func TestNew_RefusesBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec probe.Spec
		want string
	}{
		{"no kind", probe.Spec{}, "kind"},
		{"unknown kind", probe.Spec{Kind: "grpc"}, "kind"},
		{"http without url", probe.Spec{Kind: probe.KindHTTP}, "url"},
		{"bad url", probe.Spec{Kind: probe.KindOllama, URL: "ftp://x"}, "url"},
		{"openai without model", probe.Spec{Kind: probe.KindOpenAI}, "model"},
		{"anthropic without key var", probe.Spec{Kind: probe.KindAnthropic, Model: "m"}, "api_key_env"},
		{"bad status", probe.Spec{Kind: probe.KindHTTP, URL: "http://x", ExpectStatus: []int{42}}, "expect_status"},
		{"unset key var", probe.Spec{Kind: probe.KindAnthropic, Model: "m", APIKeyEnv: "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"},
		{"unset header var", probe.Spec{Kind: probe.KindHTTP, URL: "http://x", HeaderEnv: map[string]string{"Authorization": "NOPE_TOKEN"}}, "NOPE_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probe.New(tc.spec, env, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.HasPrefix(tc.name, "unset") && !errors.Is(err, probe.ErrMissingEnv) {
				t.Fatalf("err = %v, want ErrMissingEnv", err)
			}
		})
	}
}

func TestCanary_RetryAfterFromRateLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"OpenAI's exhausted requests", map[string]string{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"}, 20 * time.Second},
		{"the longer of Retry-After and the reset", map[string]string{"Retry-After": "3", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m0s"}, time.Minute},
		{"limits left: Retry-After alone", map[string]string{"Retry-After": "3", "x-ratelimit-remaining-requests": "7", "x-ratelimit-reset-requests": "1m0s"}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := serve(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				jsonReply(w, 429, tc.headers, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
			})
			r := mustNew(t, probe.Spec{Kind: probe.KindOpenAI, URL: url, Model: "m"}).Probe(context.Background())
			// The reset is read relative to the response: allow for the
			// time the probe took.
			if r.OK || r.RetryAfter > tc.want || r.RetryAfter < tc.want-time.Second {
				t.Fatalf("result %+v, want a failure with RetryAfter %s", r, tc.want)
			}
		})
	}
}
