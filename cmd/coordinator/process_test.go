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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// TestMain lets the test binary run as the coordinator itself, so tests
// can start real coordinator processes and stop them with signals.
func TestMain(m *testing.M) {
	if os.Getenv("FUSEBOX_TEST_AS_COORDINATOR") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a coordinator running as its own process.
type process struct {
	id  string
	cmd *exec.Cmd
	url string

	mu  sync.Mutex
	log strings.Builder // guarded by mu
}

func (p *process) logged(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.log.String(), s)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func startProcess(t *testing.T, id string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FUSEBOX_TEST_AS_COORDINATOR=1", "FUSEBOX_ID="+id, "FUSEBOX_LISTEN=127.0.0.1:0", "FUSEBOX_LOG_FORMAT=json")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{id: id, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			var ev struct {
				Message string `json:"message"`
				API     string `json:"api"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "coordinator starting" {
				urls <- ev.API
			}
		}
	}()
	select {
	case p.url = <-urls:
	case <-time.After(15 * time.Second):
		t.Fatalf("coordinator %s did not start:\n%s", id, p.logs())
	}
	return p
}

const agentToken = "process-test-agent-token-0123"

const completionOK = `{"id":"c","object":"chat.completion","created":1,"model":"canary-model","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}]}`

// TestCanary_StalledProberIsFencedOut stops (SIGSTOP) the coordinator that
// holds a half-open window's probe lock in the middle of its canary. The
// other coordinator probes once the lock expires; when the stopped one
// resumes, its late result (a success) is discarded.
func TestCanary_StalledProberIsFencedOut(t *testing.T) {
	srv := redistest.Start(t)
	var healthy atomic.Bool
	release := make(chan struct{})
	var canaries atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := canaries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			// The first canary hangs until the test lets it answer: a
			// success that arrives far too late.
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, completionOK)
			return
		}
		if healthy.Load() {
			_, _ = io.WriteString(w, completionOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)
	}))
	var releaseOnce sync.Once
	t.Cleanup(func() {
		releaseOnce.Do(func() { close(release) })
		provider.Close()
	})
	cfgPath := filepath.Join(t.TempDir(), "fusebox.yaml")
	cfg := fmt.Sprintf("breakers:\n  openai:\n    canary_interval: 100ms\n    canary_max_interval: 400ms\n    probe_timeout: 20s\n"+
		"    canary:\n      kind: openai\n      url: %s/v1\n      model: canary-model\n      timeout: 2s\n", provider.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FUSEBOX_REDIS_URL": srv.URL(), "FUSEBOX_CONFIG": cfgPath,
		"FUSEBOX_TICK": "20ms", "FUSEBOX_PROBE_LOCK_MARGIN": "300ms",
		"FUSEBOX_TOKENS": "app:agent:" + agentToken,
	}
	procs := map[string]*process{}
	for _, id := range []string{"c1", "c2"} {
		procs[id] = startProcess(t, id, env)
	}

	req, _ := http.NewRequest(http.MethodPost, procs["c1"].url+"/v1/reports",
		strings.NewReader(`{"agent":"app","breakers":[{"name":"openai","fail":5,"trailing_fail":5,"last_error":"HTTP 503"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	store, err := statestore.New(srv.Client(t), statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	journal := func() []statestore.Event {
		evs, err := store.Events(context.Background(), "openai", 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	find := func(event, reason, actor string) []statestore.Event {
		var out []statestore.Event
		for _, e := range journal() {
			if e.Event == event && (reason == "" || e.Reason == reason) && (actor == "" || e.Actor == actor) {
				out = append(out, e)
			}
		}
		return out
	}
	testcluster.Eventually(t, 10*time.Second, "the first canary reaches the provider", func() bool { return canaries.Load() >= 1 })
	testcluster.Eventually(t, 5*time.Second, "probe_started journaled", func() bool { return len(find("probe_started", "epoch 1", "")) == 1 })
	holderID := find("probe_started", "epoch 1", "")[0].Actor
	holder := procs[holderID]
	otherID := "c1"
	if holderID == "c1" {
		otherID = "c2"
	}
	if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	// The other coordinator takes over once the lock expires (canary
	// timeout 2s + margin 300ms): the lost window ends without a verdict
	// and its canary runs in a new one, so no window sees two canaries.
	testcluster.Eventually(t, 10*time.Second, "the other coordinator probes a new window", func() bool {
		return len(find("probe_started", "epoch 2", otherID)) == 1
	})
	took := time.Since(stopped)
	if lost := find("half_open", "prober_lost", otherID); len(lost) != 1 {
		t.Fatalf("the takeover was not journaled as a new window: %+v", lost)
	}
	if n := len(find("probe_started", "epoch 1", "")); n != 1 {
		t.Fatalf("epoch 1 saw %d probe_started, want 1", n)
	}
	testcluster.Eventually(t, 5*time.Second, "its result recorded", func() bool { return len(find("probe_failed", "", otherID)) > 0 })
	t.Logf("%s stopped mid-probe; %s probed a new window %s later", holderID, otherID, took.Round(time.Millisecond))
	if took < 1500*time.Millisecond {
		t.Fatalf("%s probed %s after the stop, before the lock could expire", otherID, took)
	}

	// The stalled prober resumes with a success in hand: discarded.
	releaseOnce.Do(func() { close(release) })
	if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, "the resumed coordinator discards its late result", func() bool {
		return holder.logged("late probe result discarded")
	})
	if s := find("probe_succeeded", "", ""); len(s) != 0 {
		t.Fatalf("the late success closed the breaker: %+v", s)
	}
	for _, e := range journal() {
		if e.Actor == holderID && e.Event != "probe_started" && e.Event != "half_open" {
			t.Fatalf("the stalled coordinator's result changed the state: %+v", e)
		}
	}

	// Nothing stays stuck: when the provider heals, a canary closes it.
	healthy.Store(true)
	testcluster.Eventually(t, 10*time.Second, "closed after the provider heals", func() bool { return len(find("probe_succeeded", "", "")) == 1 })
	snap, err := store.Snapshots(context.Background(), []string{"openai"})
	if err != nil || snap[0].State != statestore.StateClosed {
		t.Fatalf("final state %+v %v", snap, err)
	}
}
