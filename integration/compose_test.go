//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// TestCompose brings docker-compose.yml up as a newcomer would (after
// make images), checks it is healthy, and walks the README's tour: a
// request through a sidecar, the provider broken with one command, the
// sidecars failing over, the provider healed.
func TestCompose(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose not found: install it with `apt-get install -y docker-compose`")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("fbxit%d", time.Now().UnixNano()%1_000_000_000)
	ports := map[string]string{
		"COORDINATOR_PORT": freePort(t), "COORDINATOR_1_PORT": freePort(t), "AGENT_PORT": freePort(t),
		"AGENT_1_PORT": freePort(t), "FAKEPROVIDER_PORT": freePort(t), "FUSEBOX_IMAGE_TAG": tag,
	}
	compose := func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", filepath.Join(root, "docker-compose.yml")}, args...)...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for k, v := range ports {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := compose("down", "-v", "--remove-orphans"); err != nil {
			t.Logf("compose down: %v: %s", err, out)
		}
	})
	if out, err := compose("up", "-d", "--no-build"); err != nil {
		t.Fatalf("compose up: %v: %s", err, out)
	}
	coord := "http://127.0.0.1:" + ports["COORDINATOR_PORT"]
	agents := []string{"http://127.0.0.1:" + ports["AGENT_PORT"], "http://127.0.0.1:" + ports["AGENT_1_PORT"]}
	fake := "http://127.0.0.1:" + ports["FAKEPROVIDER_PORT"]
	ready := func(url string) bool {
		resp, err := httpClient.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	eventually(t, 60*time.Second, "the coordinators and sidecars are ready", func() bool {
		return ready(coord) && ready("http://127.0.0.1:"+ports["COORDINATOR_1_PORT"]) && ready(agents[0]) && ready(agents[1])
	})
	ask := func(url string) (int, string) {
		resp, err := httpClient.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		if err != nil {
			return -1, ""
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Fusebox-Provider")
	}
	for _, a := range agents {
		if s, p := ask(a); s != 200 || p != "openai" {
			t.Fatalf("%s: %d from %q", a, s, p)
		}
	}
	// Break the provider with one command.
	req, _ := http.NewRequest(http.MethodPut, fake+"/_control/faults/openai", strings.NewReader(`{"kind":"status","status":503}`))
	if resp, err := httpClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("break: %v %v", resp, err)
	}
	state := func() string {
		r, _ := http.NewRequest(http.MethodGet, coord+"/v1/breakers/openai", nil)
		r.Header.Set("Authorization", "Bearer compose-read-token-0001")
		resp, err := httpClient.Do(r)
		if err != nil {
			return ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	eventually(t, 20*time.Second, "the breaker trips for the cluster", func() bool {
		for _, a := range agents {
			ask(a)
		}
		b := state()
		return strings.Contains(b, `"effective":"open"`) || strings.Contains(b, `"effective":"half_open"`)
	})
	eventually(t, 5*time.Second, "both sidecars serve from the fallback", func() bool {
		for _, a := range agents {
			if s, p := ask(a); s != 200 || p != "anthropic" {
				return false
			}
		}
		return true
	})
	if resp, err := httpClient.Get(coord + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("dashboard: %v %v", resp, err)
	}
	// Heal it: the canary closes the breaker and traffic returns.
	del, _ := http.NewRequest(http.MethodDelete, fake+"/_control/faults/openai", nil)
	if resp, err := httpClient.Do(del); err != nil || resp.StatusCode != 204 {
		t.Fatalf("heal: %v %v", resp, err)
	}
	eventually(t, 40*time.Second, "both sidecars back on the primary", func() bool {
		for _, a := range agents {
			if _, p := ask(a); p != "openai" {
				return false
			}
		}
		return true
	})
}
