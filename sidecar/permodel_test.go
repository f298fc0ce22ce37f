package sidecar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

func TestModelBreakerName(t *testing.T) {
	long := strings.Repeat("m", 200)
	for _, tc := range []struct{ breaker, model, want string }{
		{"openai", "gpt-4o", "openai.gpt-4o"},
		{"ollama", "llama3.2:1b", "ollama.llama3.2_1b"},
		{"or", "anthropic/claude-3.5 sonnet", "or.anthropic_claude-3.5_sonnet"},
	} {
		if got := sidecar.ModelBreakerName(tc.breaker, tc.model); got != tc.want {
			t.Errorf("%s, %s: %q, want %q", tc.breaker, tc.model, got, tc.want)
		}
	}
	a, b := sidecar.ModelBreakerName("p", long), sidecar.ModelBreakerName("p", long+"x")
	if len(a) != 128 || len(b) != 128 || a == b || !statestore.ValidName(a) || !statestore.ValidName(b) {
		t.Fatalf("long names %q %q", a, b)
	}
}

func TestConfig_PerModelBreakers(t *testing.T) {
	env := func(k string) string { return testEnv[k] }
	parse := func(breaker, models string) error {
		y := strings.Replace(sidecarYAML("http://x", defaultRoutes), "    models: {\"*\": \"\"}\n", "    models: "+models+"\n    breaker: "+breaker+"\n", 1)
		_, err := sidecar.ParseConfig([]byte(y), env)
		return err
	}
	ok := func(breaker, models string) *sidecar.Provider {
		y := strings.Replace(sidecarYAML("http://x", defaultRoutes), "    models: {\"*\": \"\"}\n", "    models: "+models+"\n    breaker: "+breaker+"\n", 1)
		c, err := sidecar.ParseConfig([]byte(y), env)
		if err != nil {
			t.Fatalf("breaker %s: %v", breaker, err)
		}
		return c.Providers["openai"]
	}
	if p := ok("per_model", `{"*": ""}`); p.Granularity != sidecar.PerModel || p.Breaker != "openai" || p.MaxModelBreakers != 64 {
		t.Fatalf("per_model: %+v", p)
	}
	if p := ok("{name: oa, granularity: per_model, max_models: 3}", `{"*": ""}`); p.Granularity != sidecar.PerModel || p.Breaker != "oa" || p.MaxModelBreakers != 3 {
		t.Fatalf("the long form: %+v", p)
	}
	if p := ok("openai-prod", `{"*": ""}`); p.Granularity != sidecar.PerProvider || p.Breaker != "openai-prod" {
		t.Fatalf("a name: %+v", p)
	}
	for _, tc := range []struct{ breaker, models, want string }{
		{"per_model", `{"a:b": "a:b", "a_b": ""}`, `models "a:b" and "a_b" would share the breaker "openai.a_b"`},
		{"{name: " + strings.Repeat("x", 127) + ", granularity: per_model}", `{"*": ""}`, "at most 128 characters"},
		{"{granularity: per_request}", `{"*": ""}`, `"per_request": want per_provider or per_model`},
		{"{name: x, max_models: 3}", `{"*": ""}`, "only with granularity: per_model"},
		{"{name: x, per: model}", `{"*": ""}`, "field per not found in breaker"},
		{"'bad name!'", `{"*": ""}`, "invalid breaker name"},
	} {
		if err := parse(tc.breaker, tc.models); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("breaker %s, models %s: err = %v, want %q", tc.breaker, tc.models, err, tc.want)
		}
	}
}

// TestSidecar_PerModelBreakers: gpt-4o's outage opens its own breaker;
// gpt-4o-mini stays on the same provider.
func TestSidecar_PerModelBreakers(t *testing.T) {
	policy := "defaults:\n  consecutive_failures: 3\n  open_timeout: 1m\n"
	r := newRig(t, policy, 0, "")
	y := strings.Replace(sidecarYAML(r.fpURL, defaultRoutes), "api_key_env: OPENAI_API_KEY\n", "api_key_env: OPENAI_API_KEY\n    breaker: {granularity: per_model, max_models: 2}\n", 1)
	s := r.startSidecar(t, 0, y)
	if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Model: "gpt-4o"}); err != nil {
		t.Fatal(err)
	}
	big := strings.Replace(hello, "gpt-4o-mini", "gpt-4o", 1)
	for range 3 {
		if a := chat(t, s.url, big); a.status != 200 || a.provider != "anthropic" {
			t.Fatalf("gpt-4o during its outage: %d from %q", a.status, a.provider)
		}
	}
	testcluster.Eventually(t, 3*time.Second, "gpt-4o's breaker opens", func() bool { return r.c.Snapshot(t, "openai.gpt-4o").State == statestore.StateOpen })
	before := r.fp.Calls("openai")
	testcluster.Eventually(t, 2*time.Second, "the sidecar stops calling openai for gpt-4o", func() bool {
		a := chat(t, s.url, big)
		return a.provider == "anthropic" && strings.Contains(a.skipped(), "openai=open") && r.fp.Calls("openai") == before
	})
	if a := chat(t, s.url, hello); a.status != 200 || a.provider != "openai" {
		t.Fatalf("gpt-4o-mini: %d from %q", a.status, a.provider)
	}
	for _, name := range []string{"openai.gpt-4o-mini", "openai"} {
		if st := r.c.Snapshot(t, name).State; st != statestore.StateClosed {
			t.Fatalf("%s is %s", name, st)
		}
	}

	t.Run("models past max_models share the provider's breaker", func(t *testing.T) {
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Model: "o3"}); err != nil {
			t.Fatal(err)
		}
		if a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", "o3", 1)); a.provider != "anthropic" {
			t.Fatalf("o3: from %q", a.provider)
		}
		testcluster.Eventually(t, 3*time.Second, "o3's failure counted on the provider's breaker", func() bool {
			d, err := r.c.Store.Details(context.Background(), []string{"openai", "openai.o3"})
			return err == nil && d[0].FailureCount == 1 && !d[1].Exists
		})
	})
}

// TestSidecar_PerModelAccountWide: a 401 or an exhausted quota is the
// key's or the account's, not one model's: with breakers per model it
// opens every breaker of the provider the sidecar knows, the provider's
// own too. A 403 may be one model's permission: it opens that model's
// breaker only.
func TestSidecar_PerModelAccountWide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  fakeprovider.Fault
		reason string // the trip's reason on every breaker that opens
		spread bool
	}{
		{"a 401 opens them all as misconfigured", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 401, Model: "gpt-4o"}, "misconfigured", true},
		{"an exhausted quota opens them all for its Retry-After", fakeprovider.Fault{Kind: fakeprovider.FaultQuota, Model: "gpt-4o"}, "retry_after_capped", true},
		{"a 403 opens the model's breaker only", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 403, Model: "gpt-4o"}, "misconfigured", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "defaults:\n  consecutive_failures: 3\n  open_timeout: 1m\n", 0, "")
			y := strings.Replace(sidecarYAML(r.fpURL, defaultRoutes), "api_key_env: OPENAI_API_KEY\n", "api_key_env: OPENAI_API_KEY\n    breaker: per_model\n", 1)
			s := r.startSidecar(t, 0, y)
			// The sidecar knows two models of openai, and openai's own breaker.
			for _, m := range []string{"gpt-4o-mini", "o3"} {
				if a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", m, 1)); a.status != 200 || a.provider != "openai" {
					t.Fatalf("%s: %d from %q", m, a.status, a.provider)
				}
			}
			if err := r.fp.SetFault("openai", tc.fault); err != nil {
				t.Fatal(err)
			}
			// Asked until its breaker trips: on a loaded machine a report
			// can be lost to a moment of degraded mode.
			testcluster.Eventually(t, 5*time.Second, "gpt-4o's breaker trips", func() bool {
				if a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", "gpt-4o", 1)); a.status != 200 || a.provider != "anthropic" {
					t.Fatalf("gpt-4o: %d from %q", a.status, a.provider)
				}
				evs, err := r.c.Store.Events(context.Background(), "openai.gpt-4o", 1, "")
				return err == nil && len(evs) == 1 && evs[0].Event == "trip"
			})
			if ev := lastTrip(t, r, "openai.gpt-4o"); ev.Reason != tc.reason {
				t.Fatalf("openai.gpt-4o's trip: %+v", ev.Transition)
			}
			others := []string{"openai.gpt-4o-mini", "openai.o3", "openai"}
			if !tc.spread {
				// The model's trip is journaled: had the others been told,
				// they would have been in the same report.
				for _, name := range others {
					if st := r.c.Snapshot(t, name).State; st != statestore.StateClosed {
						t.Fatalf("%s is %s after a 403 on gpt-4o", name, st)
					}
				}
				if a := chat(t, s.url, hello); a.status != 200 || a.provider != "openai" {
					t.Fatalf("gpt-4o-mini after gpt-4o's 403: %d from %q", a.status, a.provider)
				}
				return
			}
			for _, name := range others {
				if ev := lastTrip(t, r, name); ev.Reason != tc.reason {
					t.Fatalf("%s's trip: %+v", name, ev.Transition)
				}
			}
			calls := r.fp.Calls("openai")
			testcluster.Eventually(t, 2*time.Second, "gpt-4o-mini is served by anthropic, openai not called", func() bool {
				a := chat(t, s.url, hello)
				return a.provider == "anthropic" && strings.Contains(a.skipped(), "openai=open")
			})
			if n := r.fp.Calls("openai"); n != calls {
				t.Fatalf("openai was called %d more times after the account-wide failure", n-calls)
			}
		})
	}
}

// TestSidecar_PerModelCanary: a canary configured on the coordinator
// under a per-model breaker's name probes that model only, keeps the
// model's breaker open while the model is down, and closes it when the
// model heals; the provider's other models are never probed and stay
// served.
func TestSidecar_PerModelCanary(t *testing.T) {
	fp := fakeprovider.New()
	var mu sync.Mutex
	canaries := map[string]int{} // model → canary calls
	fsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get(probe.HeaderCanary) != "" {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			var m struct{ Model string }
			_ = json.Unmarshal(body, &m)
			mu.Lock()
			canaries[req.URL.Path+" "+m.Model]++
			mu.Unlock()
		}
		fp.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { fp.Close(); fsrv.Close() })
	probed := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(canaries)
	}
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: fmt.Sprintf(`
defaults:
  consecutive_failures: 3
  open_timeout: 1m
breakers:
  openai.gpt-4o:
    canary_interval: 100ms
    canary_max_interval: 400ms
    canary:
      kind: openai
      url: %s/openai/v1
      model: gpt-4o
      timeout: 1s
`, fsrv.URL)})
	r := &rig{c: c, fp: fp, fpURL: fsrv.URL}
	y := strings.Replace(sidecarYAML(r.fpURL, defaultRoutes), "api_key_env: OPENAI_API_KEY\n", "api_key_env: OPENAI_API_KEY\n    breaker: per_model\n", 1)
	s := r.startSidecar(t, 0, y)
	if a := chat(t, s.url, hello); a.status != 200 || a.provider != "openai" {
		t.Fatalf("gpt-4o-mini: %d from %q", a.status, a.provider)
	}

	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503, Model: "gpt-4o"}); err != nil {
		t.Fatal(err)
	}
	big := strings.Replace(hello, "gpt-4o-mini", "gpt-4o", 1)
	testcluster.Eventually(t, 5*time.Second, "gpt-4o's breaker opens", func() bool {
		if a := chat(t, s.url, big); a.status != 200 || a.provider != "anthropic" {
			t.Fatalf("gpt-4o during its outage: %d from %q", a.status, a.provider)
		}
		return c.Snapshot(t, "openai.gpt-4o").State == statestore.StateOpen
	})
	// While gpt-4o is down its canaries fail: the breaker stays open.
	testcluster.Eventually(t, 5*time.Second, "two canaries of gpt-4o", func() bool { return probed()["/openai/v1/chat/completions gpt-4o"] >= 2 })
	if st := c.Snapshot(t, "openai.gpt-4o").State; st == statestore.StateClosed {
		t.Fatal("a failed canary closed the breaker")
	}
	if a := chat(t, s.url, hello); a.status != 200 || a.provider != "openai" {
		t.Fatalf("gpt-4o-mini during gpt-4o's outage: %d from %q", a.status, a.provider)
	}

	fp.ClearFault("openai")
	testcluster.Eventually(t, 5*time.Second, "a canary closes gpt-4o's breaker", func() bool { return c.Snapshot(t, "openai.gpt-4o").State == statestore.StateClosed })
	testcluster.Eventually(t, 3*time.Second, "gpt-4o served by openai again", func() bool { return chat(t, s.url, big).provider == "openai" })
	for k := range probed() {
		if k != "/openai/v1/chat/completions gpt-4o" {
			t.Fatalf("a canary probed %q; only gpt-4o has one: %v", k, probed())
		}
	}
	for _, name := range []string{"openai.gpt-4o-mini", "openai"} {
		if d, err := c.Store.Details(context.Background(), []string{name}); err != nil || d[0].State != statestore.StateClosed {
			t.Fatalf("%s: %+v %v", name, d, err)
		}
	}
}
