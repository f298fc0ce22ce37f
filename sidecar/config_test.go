package sidecar

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig_Example(t *testing.T) {
	// As shipped: against the fake provider, no key needed.
	c, err := LoadConfig("../examples/sidecar.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.RouteFor("gpt-4o")
	if !ok || len(r.Chain) != 3 || r.Chain[1].Name != "anthropic" {
		t.Fatalf("route = %+v", r)
	}
	if m, _ := c.Providers["anthropic"].Model("gpt-4o"); m != "claude-3-5-sonnet-latest" {
		t.Fatalf("anthropic maps gpt-4o to %q", m)
	}
	if m, _ := c.Providers["openai"].Model("o3"); m != "o3" {
		t.Fatalf("openai maps o3 to %q", m)
	}
	if c.Providers["ollama"].Total != 300*time.Second || c.Retry.Budget != 0.2 || c.Providers["openai"].Breaker != "openai" || c.Providers["openai"].Granularity != PerProvider {
		t.Fatalf("config = %+v", c)
	}
	if !slices.Equal(r.APIs, []API{APIChat, APIMessages}) || r.MessagesChain[0].Name != "anthropic" || r.MessagesChain[1].Name != "openai" ||
		len(r.ContextWindowFallbacks) != 1 || r.ContextWindowFallbacks[0].Name != "anthropic" || !r.scan {
		t.Fatalf("chat route = %+v", r)
	}
	if e, ok := c.RouteForAPI(APIEmbeddings, "text-embedding-3-small"); !ok || e.Name != "embeddings" || len(e.Chain) != 2 {
		t.Fatalf("embeddings route = %+v", e)
	}
	if m, _ := c.Providers["ollama"].Model("text-embedding-3-small"); m != "nomic-embed-text" {
		t.Fatalf("ollama maps the embedding model to %q", m)
	}
	if cp := c.Providers["ollama"].CapabilitiesOf("nomic-embed-text"); cp.ContextWindow != 2048 || *cp.Tools || *cp.Vision {
		t.Fatalf("nomic-embed-text capabilities %+v", cp)
	}
	if _, ok := c.RouteForAPI(APIResponses, "gpt-4o"); !ok {
		t.Fatal("no responses route")
	}
}

func TestLoadConfig_Compose(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2"}
	c, err := LoadConfig("../deploy/compose/sidecar.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range APIs {
		if _, ok := c.RouteForAPI(api, "gpt-4o-mini"); !ok {
			t.Errorf("no route serves %s", api)
		}
	}
}

// TestParseConfig_ReportsEveryProblemInFileOrder: a file with several
// mistakes names them all, with their lines, in the order they appear.
func TestParseConfig_ReportsEveryProblemInFileOrder(t *testing.T) {
	const file = `providers:
  zeta:
    kind: openai
    api_key_env: ZETA_KEY
  alpha:
    kind: nonsense
  beta:
    kind: ollama
    timeouts: {total: 1s, first_byte: 5s}
routes:
  - name: chat
    chain: [zeta, beta, ghost]
retry: {attempts: 0}
`
	_, err := ParseConfig([]byte(file), func(string) string { return "" })
	var es ConfigErrors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want ConfigErrors", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
	}
	want := []string{"4 providers.zeta.api_key_env", "6 providers.alpha.kind", "9 providers.beta.timeouts.total", "12 routes[0].chain[2]", "13 retry.attempts"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("problems:\n%s\nwant:\n%s\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
	}
}
