package sidecar

import (
	"strings"
	"testing"

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
