package sidecar

import (
	"testing"
	"time"
)

func TestLoadConfig_Example(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2"}
	c, err := LoadConfig("../examples/sidecar.yaml", func(k string) string { return env[k] })
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
	if c.Providers["ollama"].Total != 300*time.Second || c.Retry.Budget != 0.2 || c.Providers["openai"].Breaker != "openai" {
		t.Fatalf("config = %+v", c)
	}
}
