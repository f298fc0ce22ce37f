package fakeprovider_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

func start(t *testing.T) (*fakeprovider.Server, string) {
	t.Helper()
	fp := fakeprovider.New()
	srv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); srv.Close() })
	return fp, srv.URL
}

func post(t *testing.T, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServer_OpenAI(t *testing.T) {
	fp, url := start(t)
	resp, body := post(t, url+"/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	var c struct {
		Object  string `json:"object"`
		Choices []struct {
			Message      struct{ Content string }
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || resp.StatusCode != 200 || c.Object != "chat.completion" || c.Choices[0].Message.Content != fakeprovider.Reply || c.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %d %s", resp.StatusCode, body)
	}
	_, stream := post(t, url+"/openai/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	if !strings.HasSuffix(stream, "data: [DONE]\n\n") || !strings.Contains(stream, `"finish_reason":"stop"`) || !strings.Contains(stream, `"usage"`) {
		t.Fatalf("stream %s", stream)
	}
	if fp.Calls("openai") != 2 {
		t.Fatalf("calls = %d", fp.Calls("openai"))
	}
}

func TestServer_Faults(t *testing.T) {
	fp, url := start(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("status with Retry-After in each provider's shape", func(t *testing.T) {
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 429, RetryAfter: "7", Times: 1}))
		resp, body := post(t, url+"/openai/v1/chat/completions", `{"model":"m"}`)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || !strings.Contains(body, `"code":"rate_limit_exceeded"`) {
			t.Fatalf("openai 429: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if resp, _ := post(t, url+"/openai/v1/chat/completions", `{"model":"m"}`); resp.StatusCode != 200 {
			t.Fatal("a times:1 fault lasted")
		}
		must(fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 529}))
		resp, body = post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5}`, "anthropic-version", "2023-06-01")
		if resp.StatusCode != 529 || !strings.Contains(body, `"type":"overloaded_error"`) {
			t.Fatalf("anthropic 529: %d %s", resp.StatusCode, body)
		}
		must(fp.SetFault("ollama", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 404}))
		resp, body = post(t, url+"/ollama/api/chat", `{"model":"m","stream":false}`)
		if resp.StatusCode != 404 || !strings.Contains(body, `"error":"model`) {
			t.Fatalf("ollama 404: %d %s", resp.StatusCode, body)
		}
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 502, HTML: true}))
		resp, body = post(t, url+"/openai/v1/chat/completions", `{"model":"m"}`)
		if resp.StatusCode != 502 || !strings.HasPrefix(body, "<html>") {
			t.Fatalf("HTML 502: %d %s", resp.StatusCode, body)
		}
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultQuota}))
		resp, body = post(t, url+"/openai/v1/chat/completions", `{"model":"m"}`)
		if resp.StatusCode != 429 || !strings.Contains(body, "insufficient_quota") {
			t.Fatalf("quota: %d %s", resp.StatusCode, body)
		}
		fp.Reset()
	})
	t.Run("reset and hang", func(t *testing.T) {
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultReset}))
		_, err := http.Post(url+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{}`))
		if err == nil || !(errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset")) {
			t.Fatalf("reset: %v", err)
		}
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultHang}))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/openai/v1/chat/completions", strings.NewReader(`{}`))
		if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hang: %v", err)
		}
		fp.Reset()
	})
	t.Run("streams cut or failing mid-way", func(t *testing.T) {
		must(fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamCut, CutAfter: 2}))
		resp, err := http.Post(url+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || strings.Contains(string(b), "[DONE]") || !strings.Contains(string(b), "chat.completion.chunk") {
			t.Fatalf("cut stream: err %v body %s", rerr, b)
		}
		must(fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 1}))
		_, body := post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5,"stream":true}`, "anthropic-version", "2023-06-01")
		if !strings.Contains(body, "event: error") || strings.Contains(body, "message_stop") {
			t.Fatalf("anthropic stream error: %s", body)
		}
		must(fp.SetFault("ollama", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 1}))
		_, body = post(t, url+"/ollama/api/chat", `{"model":"m"}`)
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], `"error"`) {
			t.Fatalf("ollama stream error: %s", body)
		}
		fp.Reset()
	})
	t.Run("the control API", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", url+"/_control/faults/openai", strings.NewReader(`{"kind":"status","status":503,"latency":"10ms"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("set fault: %v %v", resp, err)
		}
		start := time.Now()
		if r, _ := post(t, url+"/openai/v1/chat/completions", `{}`); r.StatusCode != 503 || time.Since(start) < 10*time.Millisecond {
			t.Fatalf("fault with latency: %d after %s", r.StatusCode, time.Since(start))
		}
		bad, _ := http.NewRequest("PUT", url+"/_control/faults/openai", strings.NewReader(`{"kind":"explode"}`))
		if r, _ := http.DefaultClient.Do(bad); r.StatusCode != 400 {
			t.Fatalf("bad fault accepted: %d", r.StatusCode)
		}
		del, _ := http.NewRequest("DELETE", url+"/_control/faults/openai", nil)
		if r, _ := http.DefaultClient.Do(del); r.StatusCode != 204 {
			t.Fatalf("clear: %d", r.StatusCode)
		}
		r, err := http.Get(url + "/_control/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Calls map[string]int64 }
		_ = json.NewDecoder(r.Body).Decode(&st)
		r.Body.Close()
		if st.Calls["openai"] != fp.Calls("openai") || st.Calls["openai"] == 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestServer_AnthropicAndOllamaStreams(t *testing.T) {
	_, url := start(t)
	resp, body := post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5}`)
	if resp.StatusCode != 400 || !strings.Contains(body, "anthropic-version") {
		t.Fatalf("missing version header: %d %s", resp.StatusCode, body)
	}
	_, body = post(t, url+"/anthropic/v1/messages", `{"model":"m","max_tokens":5,"stream":true}`, "anthropic-version", "2023-06-01")
	var events []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event: ") {
			events = append(events, strings.TrimPrefix(sc.Text(), "event: "))
		}
	}
	if events[0] != "message_start" || events[len(events)-1] != "message_stop" || events[len(events)-2] != "message_delta" {
		t.Fatalf("anthropic events %v", events)
	}
	_, body = post(t, url+"/ollama/api/chat", `{"model":"m"}`)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if !strings.Contains(lines[len(lines)-1], `"done":true`) || len(lines) < 3 {
		t.Fatalf("ollama NDJSON %s", body)
	}
}
