package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/sidecar"
)

// fakeProviderAddr is where the example files point their providers and
// canaries, cmd/fakeprovider's default.
const fakeProviderAddr = "127.0.0.1:9090"

// TestExamples_TheTourStartsAsShipped runs the README's tour with no
// containers on every file of examples/ as shipped: `coordinator --dev
// --config examples/fusebox.yaml` and `fakeprovider` as their own
// processes, then this command's run() with examples/sidecar.yaml and
// exactly the settings the dev coordinator printed for a sidecar, no key
// and no token of its own. One chat request through the sidecar is
// answered 200 by the fake provider's OpenAI. Only the listen addresses
// are chosen here (free ports), by flag: the files are not touched.
func TestExamples_TheTourStartsAsShipped(t *testing.T) {
	// Every file in examples/ is started by this test; a new one must be
	// added here.
	starts := map[string]string{"fusebox.yaml": "coordinator --dev", "sidecar.yaml": "agent"}
	entries, err := os.ReadDir("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := starts[e.Name()]; !ok {
			t.Fatalf("examples/%s is started by no test: start it in TestExamples_TheTourStartsAsShipped", e.Name())
		}
	}
	if len(entries) != len(starts) {
		t.Fatalf("examples/ holds %d files, this test starts %d: %v", len(entries), len(starts), starts)
	}

	bin := buildCommands(t, "coordinator", "fakeprovider")
	fake := startFakeProvider(t, filepath.Join(bin, "fakeprovider"))
	coord := startProcess(t, filepath.Join(bin, "coordinator"), nil,
		"--dev", "--config", "examples/fusebox.yaml", "--listen", "127.0.0.1:0", "--dev-redis-addr", "127.0.0.1:0")

	// The line the dev coordinator prints for a sidecar, as a user would
	// paste it.
	line := regexp.MustCompile(`^\s+(FUSEBOX_REDIS_URL=\S+ FUSEBOX_COORDINATOR_URL=\S+ FUSEBOX_AGENT_TOKEN=\S+(?: FUSEBOX_PREFIX=\S+)?) go run ./cmd/agent --config examples/sidecar.yaml$`)
	var pasted string
	testcluster.Eventually(t, 15*time.Second, "the dev coordinator's line for a sidecar", func() bool {
		for _, l := range strings.Split(coord.output(), "\n") {
			if m := line.FindStringSubmatch(l); m != nil {
				pasted = m[1]
			}
		}
		return pasted != ""
	})
	env := map[string]string{}
	for _, kv := range strings.Fields(pasted) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	sink := &logSink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", "../../examples/sidecar.yaml", "--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = sink.Write([]byte(sc.Text() + "\n"))
			var ev struct{ Message, Listen string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Message == "sidecar starting" {
				urls <- ev.Listen
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("examples/sidecar.yaml did not start: %v\n%s", err, sink.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("the sidecar did not start:\n%s", sink.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the sidecar did not stop")
		}
	})

	// Both links up: the printed Redis and coordinator answer.
	testcluster.EventuallyEvery(t, 10*time.Second, 50*time.Millisecond, "the sidecar's links up", func() bool {
		b := getReady(t, url)
		return !b.Degraded && b.Links["redis"] == "up" && b.Links["coordinator"] == "up"
	})
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(sidecar.HeaderProvider) != "openai" || !strings.Contains(string(body), `"choices"`) {
		t.Fatalf("chat through the sidecar: %d from %q: %s\n%s", resp.StatusCode, resp.Header.Get(sidecar.HeaderProvider), body, sink.String())
	}
	if n := fake.calls(t, "openai"); n != 1 {
		t.Fatalf("the fake provider's OpenAI got %d calls, want the one", n)
	}
	if strings.Contains(coord.output(), `"level":"error"`) {
		t.Fatalf("the dev coordinator logged an error:\n%s", coord.output())
	}
}

// buildCommands builds ./cmd/<name> for each name into a directory it
// returns.
func buildCommands(t *testing.T, names ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build %v with: put Go 1.26's bin directory on PATH (%v)", names, err)
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// proc is a command running as its own process, from the repository's
// root (where the README's commands run).
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder // guarded by mu; stderr and stdout
	exit chan struct{}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// startProcess starts bin with args and only PATH and HOME from this
// environment, plus env; it is stopped (SIGTERM, then killed) when the
// test ends.
func startProcess(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), exit: make(chan struct{})}
	p.cmd.Dir = "../.."
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exit) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exit:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exit
			t.Errorf("%s did not stop on SIGTERM:\n%s", filepath.Base(bin), p.output())
		}
	})
	return p
}

// fakeProc is cmd/fakeprovider on fakeProviderAddr.
type fakeProc struct{ *proc }

// startFakeProvider starts cmd/fakeprovider with no flag, on its default
// address, which the examples name. Another test may hold that address
// for a while: it waits up to 30 s for it.
func startFakeProvider(t *testing.T, bin string) fakeProc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := startProcess(t, bin, []string{"FUSEBOX_LOG_FORMAT=json"})
		started := func() bool {
			return strings.Contains(p.output(), `"message":"fakeprovider starting"`) && reachable(fakeProviderAddr)
		}
		exited := func() bool {
			select {
			case <-p.exit:
				return true
			default:
				return false
			}
		}
		for !started() && !exited() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		switch {
		case started():
			return fakeProc{p}
		case time.Now().After(deadline):
			t.Fatalf("the fake provider did not start on %s (the examples' address) within 30 s:\n%s", fakeProviderAddr, p.output())
		}
		// It exited: the address was taken. Try again shortly.
		time.Sleep(200 * time.Millisecond)
	}
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// calls is how many calls provider p received, from the fake provider's
// own control API.
func (f fakeProc) calls(t *testing.T, p string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + fakeProviderAddr + "/_control/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Calls map[string]int64 `json:"calls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(errors.Join(errors.New("fake provider stats"), err))
	}
	return st.Calls[p]
}
