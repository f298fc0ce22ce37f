package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestParse_ResolvesFieldByField(t *testing.T) {
	c, err := config.Parse([]byte(`
defaults:
  open_timeout: 30s
  consecutive_failures: 3
breakers:
  openai:
    failure_rate: 50
    min_calls: 10
    window: 30s
    half_open: canary
    canary:
      kind: openai
      model: gpt-4o-mini
  anthropic: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := statestore.DefaultPolicy()
	want.OpenTimeout = 30 * time.Second
	want.ConsecutiveFailures = 3
	if c.Defaults != want {
		t.Fatalf("defaults = %+v, want %+v", c.Defaults, want)
	}
	if got := c.Policy("anthropic"); got != want {
		t.Fatalf("anthropic = %+v, want the defaults", got)
	}
	if got := c.Policy("never-named"); got != want {
		t.Fatalf("an unnamed breaker = %+v, want the defaults", got)
	}
	oa := c.Policy("openai")
	if oa.OpenTimeout != 30*time.Second || oa.ConsecutiveFailures != 3 || oa.FailureRate != 50 ||
		oa.MinCalls != 10 || oa.Window != 30*time.Second || oa.HalfOpen != statestore.HalfOpenCanary {
		t.Fatalf("openai = %+v", oa)
	}
	if names := c.Names(); len(names) != 2 || names[0] != "anthropic" || names[1] != "openai" {
		t.Fatalf("names = %v", names)
	}
}

func TestParse_EmptyFileIsDefaults(t *testing.T) {
	c, err := config.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Defaults != statestore.DefaultPolicy() {
		t.Fatalf("defaults = %+v", c.Defaults)
	}
}

func TestParse_BadFilesNameTheFieldAndReason(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown field", "defaults:\n  consecutive_failure: 3\n", "consecutive_failure"},
		{"rate over 100", "breakers:\n  openai:\n    failure_rate: 150\n", "breakers.openai.failure_rate: must be a percentage"},
		{"duration without unit", "defaults:\n  open_timeout: 60\n", "want a duration with a unit"},
		{"bad duration", "defaults:\n  open_timeout: soon\n", "want a duration with a unit"},
		{"max below open", "defaults:\n  open_timeout: 5m\n  max_open_timeout: 1m\n", "defaults.max_open_timeout: must be at least open_timeout"},
		{"bad name", "breakers:\n  \"open ai\": {}\n", "breakers.open ai: invalid breaker name"},
		{"bad half-open mode", "defaults:\n  half_open: sometimes\n", "defaults.half_open"},
		{"slow rate without slow call", "defaults:\n  slow_call_rate: 50\n", "defaults.slow_call: must be set"},
		{"every rule off", "defaults:\n  consecutive_failures: 0\n  honor_retry_after: false\n", "could never open"},
		{"wrong type", "defaults:\n  consecutive_failures: many\n", "line 2"},
		{"not yaml", "defaults: [\n", "config"},
		{"negative", "breakers:\n  x:\n    min_calls: -1\n", "breakers.x.min_calls"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_NamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fusebox.yaml")
	if err := os.WriteFile(path, []byte("defaults:\n  failure_rate: 101\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "defaults.failure_rate") {
		t.Fatalf("err = %v", err)
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestLoad_ExampleFile(t *testing.T) {
	c, err := config.Load("../examples/fusebox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example shows every built-in default, and sets hang_after, which
	// is off built in (only the user knows how long a healthy call takes).
	want := statestore.DefaultPolicy()
	want.HangAfter = 2 * time.Second
	if c.Defaults != want {
		t.Fatalf("the example's defaults drifted from the built-in ones: %+v", c.Defaults)
	}
	if p := c.Policy("openai"); p.FailureRate != 50 || p.SlowCall != 20*time.Second || p.HalfOpen != statestore.HalfOpenCanary {
		t.Fatalf("openai = %+v", p)
	}
	if len(c.Canaries) != 4 || c.Canaries["internal-api"].Kind != "http" || c.Canaries["openai"].URL != "http://127.0.0.1:9090/openai/v1" {
		t.Fatalf("canaries = %+v", c.Canaries)
	}
}

func TestParse_Canaries(t *testing.T) {
	c, err := config.Parse([]byte(`
breakers:
  openai:
    canary:
      kind: openai
      api_key_env: OPENAI_API_KEY
      model: gpt-4o-mini
  ollama:
    half_open: traffic
    canary:
      kind: ollama
      timeout: 2s
  plain: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Policy("openai"); p.HalfOpen != statestore.HalfOpenCanary {
		t.Fatalf("a breaker with a canary defaults to canary mode, got %q", p.HalfOpen)
	}
	if p := c.Policy("ollama"); p.HalfOpen != statestore.HalfOpenTraffic {
		t.Fatalf("an explicit half_open wins, got %q", p.HalfOpen)
	}
	oa := c.Canaries["openai"]
	if oa.URL != "https://api.openai.com/v1" || oa.Timeout != 10*time.Second || oa.MaxTokens != 5 || oa.Model != "gpt-4o-mini" {
		t.Fatalf("openai canary = %+v", oa)
	}
	if c.Canaries["ollama"].Timeout != 2*time.Second {
		t.Fatalf("ollama canary = %+v", c.Canaries["ollama"])
	}
	if _, ok := c.Canaries["plain"]; ok {
		t.Fatal("a canary appeared for a breaker without one")
	}
}

func TestParse_BadCanaries(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"canary mode without a canary", "breakers:\n  x:\n    half_open: canary\n", "breakers.x.half_open: canary needs a canary"},
		{"canary mode as the default", "defaults:\n  half_open: canary\n", "defaults.half_open"},
		{"unknown kind", "breakers:\n  x:\n    canary:\n      kind: grpc\n", "breakers.x.canary.kind"},
		{"model missing", "breakers:\n  x:\n    canary:\n      kind: openai\n", "breakers.x.canary.model"},
		{"timeout over the probe timeout", "breakers:\n  x:\n    probe_timeout: 5s\n    canary:\n      kind: ollama\n      timeout: 5s\n", "breakers.x.canary.timeout: must be shorter than probe_timeout"},
		{"unknown canary field", "breakers:\n  x:\n    canary:\n      kind: ollama\n      api_key: sk-123\n", "api_key"},
		{"canary under defaults", "defaults:\n  canary:\n    kind: ollama\n", "canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestResolveTokens(t *testing.T) {
	c, err := config.Parse([]byte(`
auth:
  tokens:
    - {name: ops, role: admin, token_env: OPS_TOKEN}
    - {name: agents, role: agent, token: literal-secret-0123456789}
  metrics_public: false
`))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OPS_TOKEN": "env-secret-0123456789"}
	ts, err := c.ResolveTokens(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Secret != "env-secret-0123456789" || ts[0].Role != config.RoleAdmin || ts[1].Secret != "literal-secret-0123456789" {
		t.Fatalf("tokens = %+v", ts)
	}
	if c.MetricsArePublic() {
		t.Fatal("metrics_public: false was ignored")
	}
	if !config.Default().MetricsArePublic() {
		t.Fatal("metrics are public by default")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"auth:\n  tokens:\n    - {name: a, role: admin, token_env: UNSET_VAR}\n", "UNSET_VAR is not set"},
		{"auth:\n  tokens:\n    - {name: a, role: admin, token: short}\n", "shorter than 16"},
		{"auth:\n  tokens:\n    - {name: a, role: root, token: 0123456789abcdef}\n", "role"},
		{"auth:\n  tokens:\n    - {name: a, role: admin}\n", "token or token_env is required"},
		{"auth:\n  tokens:\n    - {name: a, role: admin, token: 0123456789abcdef, token_env: X}\n", "not both"},
		{"auth:\n  tokens:\n    - {name: a, role: read, token: 0123456789abcdef}\n    - {name: a, role: read, token: 0123456789abcdeg}\n", "appears twice"},
		{"auth:\n  tokens:\n    - {name: 'a b', role: read, token: 0123456789abcdef}\n", "name"},
	} {
		c, err := config.Parse([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ResolveTokens(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParse_Limits(t *testing.T) {
	c, err := config.Parse(nil)
	if err != nil || c.Limits != config.DefaultLimits() {
		t.Fatalf("no limits: section: %+v %v, want the defaults", c.Limits, err)
	}
	c, err = config.Parse([]byte("limits:\n  max_breakers: 50\n  max_breakers_per_agent: 5\n  retention: 2h\n  metrics_max_breakers: 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Limits{MaxBreakers: 50, MaxBreakersPerAgent: 5, Retention: 2 * time.Hour, MetricsMaxBreakers: 10}); c.Limits != want {
		t.Fatalf("limits = %+v, want %+v", c.Limits, want)
	}
	if c, err := config.Parse([]byte("limits:\n  retention: 0s\n")); err != nil || c.Limits.Retention != 0 {
		t.Fatalf("retention 0 (keep forever): %+v %v", c, err)
	}
	for body, want := range map[string]string{
		"limits:\n  max_breakers: -1\n":        "limits.max_breakers",
		"limits:\n  retention: 10s\n":          "limits.retention: must be 0 (keep forever) or at least 1m",
		"limits:\n  metrics_max_breakers: 0\n": "limits.metrics_max_breakers",
		"limits:\n  max_breaker: 3\n":          "max_breaker",
		"limits:\n  retention: 24\n":           "want a duration with a unit",
	} {
		if _, err := config.Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to name %q", body, err, want)
		}
	}
}

// TestParse_ReportsEveryProblemInFileOrder: a file with several mistakes
// names them all, with their lines, in the order they appear, the same on
// every run.
func TestParse_ReportsEveryProblemInFileOrder(t *testing.T) {
	const file = `defaults:
  failure_rate: 150
  open_timeout: 0s
breakers:
  zeta:
    min_calls: -1
  alpha:
    unknown_field: 1
    half_open: canary
  "bad name":
    consecutive_failures: 2
limits:
  retention: 1s
`
	var first string
	for run := range 5 {
		_, err := config.Parse([]byte(file))
		var es config.Errors
		if !errors.As(err, &es) {
			t.Fatalf("err = %v, want config.Errors", err)
		}
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
		}
		want := []string{"2 defaults.failure_rate", "3 defaults.open_timeout", "6 breakers.zeta.min_calls", "8 ", "9 breakers.alpha.half_open", "10 breakers.bad name", "13 limits.retention"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("problems:\n%s\nwant:\n%s\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
		}
		if run == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("run %d reported differently:\n%s\n---\n%s", run, err, first)
		}
	}
	if !strings.Contains(first, "7 problems") || !strings.Contains(first, "line 8: field unknown_field not found") {
		t.Fatalf("message:\n%s", first)
	}
}

// TestConfig_CheckEnvNamesEveryUnsetVariable: canaries' and tokens'
// variables, all at once, in the file's order.
func TestConfig_CheckEnvNamesEveryUnsetVariable(t *testing.T) {
	c, err := config.Parse([]byte(`breakers:
  zeta:
    canary: {kind: openai, url: "http://127.0.0.1:9/v1", model: m, api_key_env: ZETA_KEY}
  alpha:
    canary: {kind: http, url: "http://127.0.0.1:9/healthz", header_env: {Authorization: ALPHA_TOKEN}}
auth:
  tokens:
    - {name: ops, role: admin, token_env: OPS_TOKEN}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckEnv(func(string) string { return "" })
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("err = %v, want 3 problems", err)
	}
	for i, want := range []string{"ZETA_KEY", "ALPHA_TOKEN", "OPS_TOKEN"} {
		if !strings.Contains(es[i].Reason, want) {
			t.Fatalf("problem %d = %v, want %s (file order)", i, es[i], want)
		}
	}
	if err := c.CheckEnv(func(string) string { return "set" }); err != nil {
		t.Fatalf("with every variable set: %v", err)
	}
}
