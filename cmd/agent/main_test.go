package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

const openAIKey = "sk-live-never-log-me-4242"

type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the sidecar binary's run() against a test cluster and a fake
// provider; it returns the sidecar's URL.
func start(t *testing.T, ctx context.Context, fp *fakeprovider.Server) (string, *logSink, chan error) {
	t.Helper()
	s := startWith(t, ctx, fp, nil, nil)
	return s.url, s.sink, s.done
}

// sidecarRun is one run() of the sidecar.
type sidecarRun struct {
	url     string
	sink    *logSink
	done    chan error
	scanned chan struct{} // closed when every line is in sink
	cluster *testcluster.Cluster
}

// startWith is start with env entries replaced by env and extra args.
func startWith(t *testing.T, ctx context.Context, fp *fakeprovider.Server, override map[string]string, args []string) sidecarRun {
	t.Helper()
	fsrv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); fsrv.Close() })
	c := testcluster.Start(t, testcluster.Options{})
	cfg := filepath.Join(t.TempDir(), "sidecar.yaml")
	yaml := fmt.Sprintf(`
providers:
  openai:
    kind: openai
    base_url: %[1]s/openai/v1
    api_key_env: OPENAI_API_KEY
  ollama:
    kind: ollama
    base_url: %[1]s/ollama
    models: {"*": "llama3.2:1b"}
routes:
  - name: chat
    chain: [openai, ollama]
`, fsrv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FUSEBOX_AGENT_CONFIG": cfg, "FUSEBOX_AGENT_LISTEN": "127.0.0.1:0", "FUSEBOX_COORDINATOR_URL": c.URLs(),
		"FUSEBOX_REDIS_URL": c.Redis.URL(), "FUSEBOX_AGENT_TOKEN": testcluster.AgentToken, "OPENAI_API_KEY": openAIKey,
	}
	for k, v := range override {
		env[k] = v
	}
	pr, pw := io.Pipe()
	sink := &logSink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	urls := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = sink.Write([]byte(sc.Text() + "\n"))
			var ev struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Message == "sidecar starting" {
				urls <- ev.Listen
			}
		}
	}()
	select {
	case u := <-urls:
		return sidecarRun{url: u, sink: sink, done: done, scanned: scanned, cluster: c}
	case err := <-done:
		t.Fatalf("the sidecar stopped: %v\n%s", err, sink.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("the sidecar did not start:\n%s", sink.String())
	}
	return sidecarRun{}
}

func post(url, body string) (int, string, error) {
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestRun_DrainsRequestsInFlight(t *testing.T) {
	fp := fakeprovider.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, sink, done := start(t, ctx, fp)
	if err := fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(400 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	type res struct {
		status int
		err    error
	}
	got := make(chan res, 1)
	go func() {
		s, _, err := post(url, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"slow"}]}`)
		got <- res{s, err}
	}()
	testcluster.Eventually(t, 5*time.Second, "the request reached the provider", func() bool { return fp.Calls("openai") == 1 })
	cancel() // SIGTERM
	r := <-got
	if r.err != nil || r.status != 200 {
		t.Fatalf("the request in flight during shutdown: %d %v", r.status, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, sink.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the drain")
	}
}

func TestRun_NeverLogsTheAPIKey(t *testing.T) {
	fp := fakeprovider.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, sink, _ := start(t, ctx, fp)
	var bodies []string
	for _, f := range []fakeprovider.Fault{
		{Kind: fakeprovider.FaultStatus, Status: 401},
		{Kind: fakeprovider.FaultStatus, Status: 503},
		{Kind: fakeprovider.FaultQuota},
		{Kind: fakeprovider.FaultReset},
		{Kind: fakeprovider.FaultStatus, Status: 400},
	} {
		if err := fp.SetFault("openai", f); err != nil {
			t.Fatal(err)
		}
		_, body, err := post(url, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	call, _ := fp.LastCall("openai")
	if call.Headers["Authorization"] != "Bearer "+openAIKey {
		t.Fatalf("the provider did not get the key: %v", call.Headers)
	}
	cancel()
	logs := sink.String()
	if !strings.Contains(logs, "configuration error") {
		t.Fatalf("the 401 was not logged loudly:\n%s", logs)
	}
	for _, s := range append(bodies, logs) {
		if strings.Contains(s, openAIKey) || strings.Contains(s, "never-log-me") {
			t.Fatalf("the API key leaked: %s", s)
		}
	}
}

func TestRun_BadConfigFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown kind", "providers:\n  x: {kind: grpc}\nroutes: [{name: r, chain: [x]}]\n", "providers.x.kind"},
		{"missing key variable", "providers:\n  o: {kind: openai, api_key_env: NOT_SET_HERE}\nroutes: [{name: r, chain: [o]}]\n", "NOT_SET_HERE"},
		{"chain names nothing", "providers:\n  l: {kind: ollama}\nroutes: [{name: r, chain: [nope]}]\n", "routes[0].chain[0]"},
		{"timeout without unit", "providers:\n  l: {kind: ollama, timeouts: {total: 30}}\nroutes: [{name: r, chain: [l]}]\n", "want a duration"},
		{"unknown field", "providers:\n  l: {kind: ollama, api_key: sk-x}\nroutes: [{name: r, chain: [l]}]\n", "api_key"},
		{"no routes", "providers:\n  l: {kind: ollama}\n", "routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			err := run(context.Background(), []string{"--config", p}, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if err := run(context.Background(), nil, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("no config: %v", err)
	}
}
