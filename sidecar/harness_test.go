package sidecar_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/provider"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

// rig is a cluster, a fake provider and sidecars in front of it.
type rig struct {
	c        *testcluster.Cluster
	fp       *fakeprovider.Server
	fpURL    string
	sidecars []*sc
}

type sc struct {
	url   string
	agent *agentlib.Agent
	srv   *sidecar.Server
}

var testEnv = map[string]string{"OPENAI_API_KEY": "sk-openai-test-key-0000", "ANTHROPIC_API_KEY": "sk-ant-test-key-0000"}

// sidecarYAML is the usual chain: openai, then anthropic, then ollama.
func sidecarYAML(fpURL, extra string) string {
	return fmt.Sprintf(`
providers:
  openai:
    kind: openai
    base_url: %[1]s/openai/v1
    api_key_env: OPENAI_API_KEY
    models: {"*": ""}
    timeouts: {connect: 1s, first_byte: 500ms, total: 3s}
  anthropic:
    kind: anthropic
    base_url: %[1]s/anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: {"*": "claude-3-5-haiku-latest"}
    timeouts: {connect: 1s, first_byte: 500ms, total: 3s}
  ollama:
    kind: ollama
    base_url: %[1]s/ollama
    models: {"*": "llama3.2:1b"}
    timeouts: {connect: 1s, first_byte: 500ms, total: 3s}
%[2]s`, fpURL, extra)
}

const defaultRoutes = `
routes:
  - name: chat
    models: ["*"]
    chain: [openai, anthropic, ollama]
retry: {attempts: 3, base: 5ms, max: 20ms}
`

func newRig(t testing.TB, policies string, sidecars int, sidecarExtra string) *rig {
	t.Helper()
	fp := fakeprovider.New()
	fsrv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); fsrv.Close() })
	r := &rig{c: testcluster.Start(t, testcluster.Options{ConfigYAML: policies}), fp: fp, fpURL: fsrv.URL}
	if sidecarExtra == "" {
		sidecarExtra = defaultRoutes
	}
	for i := range sidecars {
		r.sidecars = append(r.sidecars, r.startSidecar(t, i, sidecarYAML(fsrv.URL, sidecarExtra)))
	}
	return r
}

func (r *rig) startSidecar(t testing.TB, i int, yaml string) *sc {
	t.Helper()
	return r.startSidecarWith(t, i, yaml, nil)
}

// startSidecarWith starts a sidecar logging to log (nil: nowhere).
func (r *rig) startSidecarWith(t testing.TB, i int, yaml string, log *zerolog.Logger) *sc {
	t.Helper()
	cfg, err := sidecar.ParseConfig([]byte(yaml), func(k string) string { return testEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := agentlib.New(agentlib.Config{
		CoordinatorURL: r.c.URLs(), RedisURL: r.c.Redis.URL(), Token: testcluster.AgentToken,
		AgentID: fmt.Sprintf("sidecar-%d", i), ResyncInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	rdb, err := statestore.Dial(r.c.Redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	srv, err := sidecar.New(sidecar.Options{Config: cfg, Agent: a, Redis: rdb, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &sc{url: hs.URL, agent: a, srv: srv}
}

// answer is a sidecar response, read whole.
type answer struct {
	status   int
	provider string
	fallback string
	cache    string
	body     string
	header   http.Header
}

func (a answer) content() string {
	var c struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	_ = json.Unmarshal([]byte(a.body), &c)
	if len(c.Choices) == 0 {
		return ""
	}
	return c.Choices[0].Message.Content
}

func chat(t *testing.T, url, body string, headers ...string) answer {
	t.Helper()
	return chatCtx(t, context.Background(), url, body, headers...)
}

func chatCtx(t *testing.T, ctx context.Context, url, body string, headers ...string) answer {
	t.Helper()
	return postCtx(t, ctx, url+"/v1/chat/completions", body, headers...)
}

// post sends body to a sidecar endpoint (url is the endpoint's).
func post(t *testing.T, url, body string, headers ...string) answer {
	t.Helper()
	return postCtx(t, context.Background(), url, body, headers...)
}

func postCtx(t *testing.T, ctx context.Context, url, body string, headers ...string) answer {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, provider: resp.Header.Get(sidecar.HeaderProvider), fallback: resp.Header.Get(sidecar.HeaderFallback),
		cache: resp.Header.Get(sidecar.HeaderCache), body: string(b), header: resp.Header}
}

const hello = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`
const helloStream = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`

// events reads a streamed answer's server-sent events.
func (a answer) events(t *testing.T) []provider.Event {
	t.Helper()
	var out []provider.Event
	rd := bufio.NewReader(strings.NewReader(a.body))
	for {
		ev, err := provider.ReadEvent(rd)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("the stream does not read: %v\n%s", err, a.body)
		}
		out = append(out, ev)
	}
}

// skipped is the answer's X-Fusebox-Skipped.
func (a answer) skipped() string { return a.header.Get(sidecar.HeaderSkipped) }

// lastBody is the body the fake provider last received for p, decoded.
func lastBody(t *testing.T, fp *fakeprovider.Server, p string) map[string]any {
	t.Helper()
	c, ok := fp.LastCall(p)
	if !ok {
		t.Fatalf("%s received nothing", p)
	}
	var m map[string]any
	if err := json.Unmarshal(c.Body, &m); err != nil {
		t.Fatalf("%s received a body that is not JSON: %s", p, c.Body)
	}
	return m
}

// js is v as JSON, for comparisons in messages.
func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func startFake(t *testing.T, fp *fakeprovider.Server) string {
	t.Helper()
	fsrv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); fsrv.Close() })
	return fsrv.URL
}
