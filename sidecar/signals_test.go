package sidecar_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// lastTrip waits for the breaker's newest journal event to be a trip,
// and returns it.
func lastTrip(t *testing.T, r *rig, breaker string) statestore.Event {
	t.Helper()
	var ev statestore.Event
	testcluster.Eventually(t, 3*time.Second, breaker+" trips", func() bool {
		evs, err := r.c.Store.Events(context.Background(), breaker, 1, "")
		if err != nil || len(evs) == 0 {
			return false
		}
		ev = evs[0]
		return ev.Event == "trip"
	})
	return ev
}

func TestSidecar_ProviderSignals(t *testing.T) {
	r := newRig(t, tablePolicy, 1, tableRoutes)
	s := r.sidecars[0]

	t.Run("401: the cluster's breaker opens as misconfigured", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 401, Times: 1}); err != nil {
			t.Fatal(err)
		}
		if a := chat(t, s.url, hello); a.status != 200 || a.provider != "anthropic" {
			t.Fatalf("%d from %q", a.status, a.provider)
		}
		if ev := lastTrip(t, r, "openai"); ev.Reason != "misconfigured" || ev.OpenForMS < 59*60*1000 {
			t.Fatalf("the trip: %+v", ev.Transition)
		}
	})

	t.Run("a 200 that says the requests are exhausted: the cluster waits for the reset, no failure counted", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultExhausted, Reset: fakeprovider.Duration(3 * time.Second), Times: 1}); err != nil {
			t.Fatal(err)
		}
		if a := chat(t, s.url, hello); a.status != 200 || a.provider != "openai" || a.content() != fakeprovider.Reply {
			t.Fatalf("the exhausted answer itself: %d from %q", a.status, a.provider)
		}
		ev := lastTrip(t, r, "openai")
		if ev.Reason != "retry_after" || ev.FailureCount != 0 || ev.OpenForMS > 3000 || ev.OpenForMS < 2000 {
			t.Fatalf("the trip: %+v", ev.Transition)
		}
		b, _ := s.agent.Breaker("openai")
		testcluster.Eventually(t, 2*time.Second, "the sidecar sees it", func() bool { return b.State().State == statestore.StateOpen })
		calls := r.fp.Calls("openai")
		if a := chat(t, s.url, hello); a.provider != "anthropic" || r.fp.Calls("openai") != calls {
			t.Fatalf("before the reset: from %q, openai called %d more", a.provider, r.fp.Calls("openai")-calls)
		}
		if n := metric(t, s.url, `fusebox_sidecar_rate_limit_exhausted_total{provider="openai"}`); n != 1 {
			t.Fatalf("exhausted answers counted %v", n)
		}
	})

	t.Run("Anthropic's anthropic-ratelimit-* headers too", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultExhausted, Reset: fakeprovider.Duration(3 * time.Second), Times: 1}); err != nil {
			t.Fatal(err)
		}
		if a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", "claude-primary", 1)); a.status != 200 || a.provider != "anthropic" {
			t.Fatalf("%d from %q", a.status, a.provider)
		}
		// The reset is a time to the second: 3 to 4 s away.
		if ev := lastTrip(t, r, "anthropic"); ev.Reason != "retry_after" || ev.FailureCount != 0 || ev.OpenForMS > 4100 || ev.OpenForMS < 2000 {
			t.Fatalf("the trip: %+v", ev.Transition)
		}
	})

	t.Run("a 429 with exhausted limits and no Retry-After waits for the reset", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 429, Reset: fakeprovider.Duration(20 * time.Second), Times: 1}); err != nil {
			t.Fatal(err)
		}
		if a := chat(t, s.url, hello); a.provider != "anthropic" {
			t.Fatalf("from %q", a.provider)
		}
		if ev := lastTrip(t, r, "openai"); ev.Reason != "retry_after" || ev.OpenForMS > 20000 || ev.OpenForMS < 18000 {
			t.Fatalf("the trip: %+v", ev.Transition)
		}
	})
}

func TestSidecar_ModelList(t *testing.T) {
	r := newRig(t, tablePolicy, 0, "")
	y := sidecarYAML(r.fpURL, "routes:\n  - name: chat\n    models: [\"*\", \"my-alias\"]\n    chain: [openai, anthropic, ollama]\n")
	y = strings.Replace(y, `models: {"*": "claude-3-5-haiku-latest"}`, `models: {"claude-sonnet-4-5": "claude-sonnet-4-5", "*": "claude-3-5-haiku-latest"}`, 1)
	y = strings.Replace(y, `models: {"*": "llama3.2:1b"}`, `models: {"*": ""}`, 1)
	s := r.startSidecar(t, 0, y)
	list := func(t *testing.T, url string, headers ...string) (ids []string, owners map[string]string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/v1/models", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l struct {
			Object  string `json:"object"`
			HasMore *bool  `json:"has_more"`
			Data    []struct {
				ID, Type string
				OwnedBy  string `json:"owned_by"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		owners = map[string]string{}
		for _, d := range l.Data {
			ids = append(ids, d.ID)
			owners[d.ID] = d.OwnedBy
			if len(headers) > 0 && (d.Type != "model" || l.HasMore == nil || *l.HasMore) {
				t.Fatalf("not Anthropic's format: %+v", l)
			}
		}
		return ids, owners
	}
	t.Run("the chain's models merged: the routes', and what each provider that passes models through lists", func(t *testing.T) {
		ids, owners := list(t, s.url)
		if strings.Join(ids, ",") != "claude-sonnet-4-5,gpt-4o,gpt-4o-mini,llama3.2:1b,my-alias,nomic-embed-text,text-embedding-3-small" {
			t.Fatalf("ids %v", ids)
		}
		if owners["gpt-4o"] != "openai" || owners["nomic-embed-text"] != "ollama" || owners["my-alias"] != "fusebox:chat" || owners["claude-sonnet-4-5"] != "fusebox:chat" {
			t.Fatalf("owners %v", owners)
		}
		if r.fp.ModelListCalls("anthropic") != 0 {
			t.Fatal("anthropic, which maps every model to its own, was asked for its list")
		}
	})
	t.Run("cached: asked once a minute", func(t *testing.T) {
		before := r.fp.ModelListCalls("openai")
		list(t, s.url)
		if n := r.fp.ModelListCalls("openai"); n != before {
			t.Fatalf("openai asked %d more times", n-before)
		}
	})
	t.Run("in Anthropic's format for Anthropic's SDKs", func(t *testing.T) {
		if ids, _ := list(t, s.url, "anthropic-version", anthropicVersion); len(ids) != 7 {
			t.Fatalf("ids %v", ids)
		}
	})
	t.Run("a provider that does not answer: the others' and the configured models", func(t *testing.T) {
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
			t.Fatal(err)
		}
		defer r.fp.Reset()
		s2 := r.startSidecar(t, 1, y)
		ids, _ := list(t, s2.url)
		if strings.Join(ids, ",") != "claude-sonnet-4-5,llama3.2:1b,my-alias,nomic-embed-text" {
			t.Fatalf("ids %v", ids)
		}
		if n := metric(t, s2.url, `fusebox_sidecar_model_lists_total{provider="openai",result="error"}`); n != 1 {
			t.Fatalf("errors counted %v", n)
		}
	})
}
