package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// benchChat is a typical tool-calling chat request: a system prompt, a
// few turns, two tools; about 2 KB.
var benchChat = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},` +
	`{"role":"user","content":"` + strings.Repeat("What is the weather in Paris today? ", 20) + `"},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_1","content":"18 degrees, sunny"}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather","description":"The weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},` +
	`{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}}}}}],"temperature":0.2}`

// BenchmarkRequest: what the sidecar adds to a request before it leaves:
// parsing, reading its needs (only on routes with capabilities), and
// building each provider's body.
func BenchmarkRequest(b *testing.B) {
	body := []byte(benchChat)
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseRequest(APIChat, body, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	long := []byte(benchLong)
	b.Run("parse 100KB", func(b *testing.B) {
		b.SetBytes(int64(len(long)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseRequest(APIChat, long, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	r, _ := parseRequest(APIChat, body, nil)
	b.Run("needs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n := r.scanNeeds(); !n.tools {
				b.Fatal(n)
			}
		}
	})
	for _, p := range []*Provider{
		{Name: "openai", Kind: KindOpenAI, BaseURL: "http://x/v1", APIKey: "k"},
		{Name: "anthropic", Kind: KindAnthropic, BaseURL: "http://x", APIKey: "k", MaxTokens: 4096},
	} {
		u := &upstream{p: p}
		b.Run("build for "+p.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := u.build(r, "m"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.ReportMetric(float64(len(body)), "bytes/request")
}

// benchLong is a long prompt: a chat request of about 100 KB.
var benchLong = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Summarize the document."},` +
	`{"role":"user","content":"` + strings.Repeat("The quick brown fox jumps over the lazy dog, twice. ", 2000) + `"}],"max_tokens":512}`

// BenchmarkValidJSON: checking a body is JSON, encoding/json's way and
// validJSON's, on a typical request and a long one.
func BenchmarkValidJSON(b *testing.B) {
	for _, body := range []struct {
		name string
		b    []byte
	}{{"2KB", []byte(benchChat)}, {"100KB", []byte(benchLong)}} {
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{{"json.Valid", json.Valid}, {"validJSON", validJSON}} {
			b.Run(body.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(body.b)))
				b.ReportAllocs()
				for b.Loop() {
					if !v.valid(body.b) {
						b.Fatal("not valid")
					}
				}
			})
		}
	}
}

// BenchmarkBreakerFor: finding a request's breaker, per provider (a
// field) and per model (one map read).
func BenchmarkBreakerFor(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{})
	a, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	for _, g := range []Granularity{PerProvider, PerModel} {
		p := &Provider{Name: "openai", Breaker: "openai", Granularity: g, MaxModelBreakers: 64, Models: map[string]string{"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}}
		pb, err := newProviderBreakers(p, a, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(g), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if pb.get("gpt-4o-mini") == nil {
					b.Fatal("no breaker")
				}
			}
		})
	}
}

// benchPlain is the proxy benchmark's request (bench.ProxyBody): a
// non-streamed chat completion of a few turns, about 1.3 KB.
var benchPlain = `{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are a helpful assistant for a travel agency. Answer briefly, in the customer's language, and never invent prices."},` +
	`{"role":"user","content":"` + strings.Repeat("I would like to visit Lisbon in May for a week with two children. ", 8) + `"},` +
	`{"role":"assistant","content":"Lisbon in May is lovely: mild, sunny and not yet crowded. Do you prefer the old town or the beaches?"},` +
	`{"role":"user","content":"The old town, near a tram line, and a day trip to Sintra."}],` +
	`"max_tokens":256,"temperature":0.2,"user":"customer-1234"}`

// cannedTransport answers every request with the fake provider's
// answer, from memory: the handler's cost without the network's. Its own
// allocations (the response, its header and body: 4) are counted too.
type cannedTransport struct {
	header http.Header
	body   []byte
	sent   atomic.Int64
}

func (t *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	t.sent.Add(1)
	return &http.Response{StatusCode: http.StatusOK, Header: t.header, Body: io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)), Request: r}, nil
}

// rewindBody is a request body that can be read again.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// nullWriter is a ResponseWriter that keeps the status and one header
// map, cleared between requests.
type nullWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *nullWriter) Header() http.Header { return w.h }
func (w *nullWriter) WriteHeader(s int)   { w.status = s }
func (w *nullWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

// benchChunks is the stream BenchmarkServe/stream's provider sends: a
// role chunk, 40 chunks of a word, a finish and [DONE].
var benchChunks = func() []byte {
	var b bytes.Buffer
	chunk := func(delta, finish string) {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1764600000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":%s,"finish_reason":%s,"logprobs":null}]}`+"\n\n", delta, finish)
	}
	chunk(`{"role":"assistant","content":""}`, "null")
	for i := range 40 {
		chunk(fmt.Sprintf(`{"content":"word%d "}`, i), "null")
	}
	chunk(`{}`, `"stop"`)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}()

// BenchmarkServe: one chat request through the handler, on the shipped
// config (examples/sidecar.yaml: capabilities, a hedge), the provider's
// answer from memory: a whole answer (plain), or a stream of 43 events
// (stream). allocs/op is what the sidecar allocates per request, less
// the network's share.
func BenchmarkServe(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{})
	a, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	data, err := os.ReadFile("../examples/sidecar.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := ParseConfig(data, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Agent: a})
	if err != nil {
		b.Fatal(err)
	}
	rateLimits := http.Header{
		"X-Ratelimit-Limit-Requests":     {"10000"},
		"X-Ratelimit-Remaining-Requests": {"9999"},
		"X-Ratelimit-Reset-Requests":     {"6ms"},
		"X-Ratelimit-Limit-Tokens":       {"1000000"},
		"X-Ratelimit-Remaining-Tokens":   {"999900"},
		"X-Ratelimit-Reset-Tokens":       {"3ms"},
	}
	tr := &cannedTransport{}
	for _, u := range s.upstreams {
		u.client.Transport = tr
	}
	for _, m := range []struct {
		name, body, contentType string
		answer                  []byte
	}{
		{"plain", benchPlain, "application/json", []byte(`{"id":"chatcmpl-fake1","object":"chat.completion","created":1764600000,"model":"gpt-4o-mini",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake provider. All systems nominal.","refusal":null},"finish_reason":"stop","logprobs":null}],` +
			`"usage":{"prompt_tokens":330,"completion_tokens":9,"total_tokens":339}}`)},
		{"stream", strings.Replace(benchPlain, `{"model":"gpt-4o-mini",`, `{"model":"gpt-4o-mini","stream":true,`, 1), "text/event-stream", benchChunks},
	} {
		b.Run(m.name, func(b *testing.B) {
			tr.header = rateLimits.Clone()
			tr.header.Set("Content-Type", m.contentType)
			tr.body = m.answer
			tr.sent.Store(0)
			body := []byte(m.body)
			rb := &rewindBody{}
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(body))
			w := &nullWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status, w.n = 0, 0
				rb.Reset(body)
				req.Body = rb
				s.ServeHTTP(w, req)
				if w.status != http.StatusOK || w.n == 0 {
					b.Fatalf("status %d, %d bytes", w.status, w.n)
				}
			}
			if tr.sent.Load() == 0 {
				b.Fatal("no request reached the provider")
			}
			b.ReportMetric(float64(len(body)), "bytes/request")
		})
	}
}

// BenchmarkPercentile: a hedged request's wait, the 95th percentile of
// the provider's last 256 first-byte times.
func BenchmarkPercentile(b *testing.B) {
	var f firstBytes
	for i := range 300 {
		f.observe("openai", time.Duration(i*7919%1000)*time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.percentile("openai", 95); !ok {
			b.Fatal("no percentile")
		}
	}
}
