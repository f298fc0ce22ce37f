package sidecar_test

import (
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/sidecar"
)

const endpointRoutes = `
routes:
  - name: embeddings
    apis: [embeddings]
    chain: [openai, ollama]
  - name: responses
    apis: [responses]
    chain: [openai, ollama]
  - name: chat
    chain: [openai, anthropic, ollama]
retry: {attempts: 1, base: 5ms, max: 20ms}
`

func TestSidecar_Embeddings(t *testing.T) {
	r := newRig(t, tablePolicy, 1, endpointRoutes)
	s := r.sidecars[0]
	url := s.url + "/v1/embeddings"
	type list struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	t.Run("served by the route's chain: OpenAI", func(t *testing.T) {
		a := post(t, url, `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":4}`)
		l := decode[list](t, a.body)
		want := fakeprovider.Embedding("text-embedding-3-small", "b", 4)
		if a.status != 200 || a.provider != "openai" || l.Object != "list" || len(l.Data) != 2 || l.Data[1].Embedding[3] != want[3] {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
		if c, _ := r.fp.LastCall("openai"); c.Path != "/openai/v1/embeddings" || c.Headers["Authorization"] != "Bearer "+testEnv["OPENAI_API_KEY"] {
			t.Fatalf("OpenAI got %+v", c)
		}
	})
	t.Run("OpenAI down: Ollama's /v1/embeddings, with its model", func(t *testing.T) {
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 503}); err != nil {
			t.Fatal(err)
		}
		defer r.fp.Reset()
		a := post(t, url, `{"model":"text-embedding-3-small","input":"a","encoding_format":"float"}`)
		l := decode[list](t, a.body)
		if c, _ := r.fp.LastCall("ollama"); a.status != 200 || a.provider != "ollama" || a.fallback != "true" || c.Path != "/ollama/v1/embeddings" || l.Model != "llama3.2:1b" {
			t.Fatalf("%d from %q (%s): %s", a.status, a.provider, c.Path, a.body)
		}
	})
	t.Run("refused before any provider: no input, a stream", func(t *testing.T) {
		for _, body := range []string{`{"model":"m"}`, `{"model":"m","input":"a","stream":true}`} {
			if a := post(t, url, body); a.status != 400 || !strings.Contains(a.body, "invalid_request_error") {
				t.Errorf("%s: %d %s", body, a.status, a.body)
			}
		}
		if r.fp.Calls("openai") != 0 {
			t.Fatal("a refused request reached a provider")
		}
	})
	t.Run("a chain with anthropic for embeddings is a config error", func(t *testing.T) {
		_, err := sidecar.ParseConfig([]byte(sidecarYAML(r.fpURL, "routes:\n  - name: e\n    apis: [embeddings]\n    chain: [openai, anthropic]\n")), func(k string) string { return testEnv[k] })
		if err == nil || !strings.Contains(err.Error(), "routes[0].chain[1]") || !strings.Contains(err.Error(), "no embeddings API") {
			t.Fatalf("err = %v", err)
		}
		_, err = sidecar.ParseConfig([]byte(sidecarYAML(r.fpURL, "routes:\n  - name: e\n    apis: [responses, chat]\n    chain: [anthropic]\n")), func(k string) string { return testEnv[k] })
		if err == nil || !strings.Contains(err.Error(), "Responses API") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSidecar_Responses(t *testing.T) {
	r := newRig(t, tablePolicy, 1, endpointRoutes)
	s := r.sidecars[0]
	url := s.url + "/v1/responses"
	type response struct {
		Object string `json:"object"`
		Status string `json:"status"`
		Output []struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"output"`
	}
	t.Run("passed through, streamed and not", func(t *testing.T) {
		r.fp.Reset()
		a := post(t, url, `{"model":"gpt-4o-mini","input":"hi","store":false,"reasoning":{"effort":"low"}}`)
		res := decode[response](t, a.body)
		if a.status != 200 || a.provider != "openai" || res.Object != "response" || res.Output[0].Content[0].Text != fakeprovider.Reply {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
		if sent := lastBody(t, r.fp, "openai"); js(sent["reasoning"]) != `{"effort":"low"}` || sent["store"] != false {
			t.Fatalf("OpenAI got %s", js(sent))
		}
		a = post(t, url, `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
		evs := a.events(t)
		var text strings.Builder
		for _, ev := range evs {
			if ev.Name == "response.output_text.delta" {
				text.WriteString(decode[struct{ Delta string }](t, string(ev.Data)).Delta)
			}
		}
		if a.status != 200 || evs[len(evs)-1].Name != "response.completed" || text.String() != fakeprovider.Reply {
			t.Fatalf("stream %q: %s", text.String(), a.body)
		}
	})
	t.Run("OpenAI down: Ollama's /v1/responses", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 500}); err != nil {
			t.Fatal(err)
		}
		a := post(t, url, `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
		if c, _ := r.fp.LastCall("ollama"); a.status != 200 || a.provider != "ollama" || c.Path != "/ollama/v1/responses" || !strings.Contains(a.body, "response.completed") {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
	})
	t.Run("a stored conversation stays with the route's first provider", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 500}); err != nil {
			t.Fatal(err)
		}
		a := post(t, url, `{"model":"gpt-4o-mini","input":"and then?","previous_response_id":"resp_123"}`)
		if a.status != 503 || a.skipped() != "ollama=stateful" || r.fp.Calls("ollama") != 0 {
			t.Fatalf("%d skipped %q: %s", a.status, a.skipped(), a.body)
		}
		r.fp.Reset()
		if a := post(t, url, `{"model":"gpt-4o-mini","input":"and then?","previous_response_id":"resp_123"}`); a.status != 200 || a.provider != "openai" {
			t.Fatalf("%d from %q", a.status, a.provider)
		}
	})
	t.Run("a stream that fails after it began ends with an error event", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamError, CutAfter: 5}); err != nil {
			t.Fatal(err)
		}
		a := post(t, url, `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
		evs := a.events(t)
		if last := evs[len(evs)-1]; a.status != 200 || last.Name != "error" || !strings.Contains(string(last.Data), "fusebox_upstream_stream_error") || strings.Contains(a.body, "response.completed") {
			t.Fatalf("%d: %s", a.status, a.body)
		}
		expectReported(t, r, s.agent, "openai", 1)
	})
	t.Run("a stream cut before its first token fails over", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStreamCut, CutAfter: 1}); err != nil {
			t.Fatal(err)
		}
		a := post(t, url, `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
		if a.status != 200 || a.provider != "ollama" || strings.Count(a.body, "event: response.created") != 1 || !strings.Contains(a.body, "response.completed") {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
	})
}
