package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/config"
)

func TestRun_DevModeServesAndShutsDown(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"FUSEBOX_LOG_FORMAT": "json"}
	go func() {
		done <- run(ctx, []string{"--dev", "--listen", "127.0.0.1:0", "--dev-redis-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	apiRe := regexp.MustCompile(`API:\s+(http://\S+)`)
	redisRe := regexp.MustCompile(`Redis:\s+(redis://\S+)`)
	agentRe := regexp.MustCompile(`agent token:\s+(\S+)`)
	sidecarRe := regexp.MustCompile(`^\s+FUSEBOX_REDIS_URL=(\S+) FUSEBOX_COORDINATOR_URL=(\S+) FUSEBOX_AGENT_TOKEN=(\S+) go run ./cmd/agent --config examples/sidecar.yaml$`)
	var apiURL, redisURL, agentToken string
	var sidecarLine []string
	sc := bufio.NewScanner(pr)
	go func() {
		<-time.After(10 * time.Second)
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	for sc.Scan() && (apiURL == "" || redisURL == "" || agentToken == "" || sidecarLine == nil) {
		if m := sidecarRe.FindStringSubmatch(sc.Text()); m != nil {
			sidecarLine = m[1:]
		}
		if m := agentRe.FindStringSubmatch(sc.Text()); m != nil {
			agentToken = m[1]
		}
		if m := apiRe.FindStringSubmatch(sc.Text()); m != nil {
			apiURL = m[1]
		}
		if m := redisRe.FindStringSubmatch(sc.Text()); m != nil {
			redisURL = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if apiURL == "" || redisURL == "" || agentToken == "" {
		t.Fatalf("dev mode did not print its addresses and tokens (api %q, redis %q, agent token %q)", apiURL, redisURL, agentToken)
	}
	// The line to paste for a sidecar carries exactly what was printed
	// above, and its Redis answers.
	if sidecarLine == nil || sidecarLine[0] != redisURL || sidecarLine[1] != apiURL || sidecarLine[2] != agentToken {
		t.Fatalf("the sidecar line %q does not match redis %q, api %q, agent token %q", sidecarLine, redisURL, apiURL, agentToken)
	}
	ro, err := redis.ParseURL(sidecarLine[0])
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the printed FUSEBOX_REDIS_URL: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(apiURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	post := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, apiURL+"/v1/reports", strings.NewReader(`{"agent":"a","breakers":[{"name":"x","fail":5,"trailing_fail":5}]}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("report without a token: %d", resp.StatusCode)
	}
	resp := post(agentToken)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"open"`) {
		t.Fatalf("report: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after cancellation", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}

func TestRun_BadInputFailsAtStart(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad tick env", nil, map[string]string{"FUSEBOX_TICK": "often"}, "FUSEBOX_TICK"},
		{"bad dev env", nil, map[string]string{"FUSEBOX_DEV": "sure"}, "FUSEBOX_DEV"},
		{"missing config", []string{"--config", "/nonexistent/fusebox.yaml"}, nil, "/nonexistent/fusebox.yaml"},
		{"bad redis url", []string{"--redis-url", "mysql://x"}, nil, "scheme"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
		{"no tokens outside dev mode", []string{"--redis-url", "redis://127.0.0.1:1"}, nil, "no API tokens"},
		{"bad token entry", []string{"--redis-url", "redis://127.0.0.1:1"}, map[string]string{"FUSEBOX_TOKENS": "ops:admin"}, "FUSEBOX_TOKENS entry 1"},
		{"weak token", []string{"--redis-url", "redis://127.0.0.1:1"}, map[string]string{"FUSEBOX_TOKENS": "ops:admin:short"}, "shorter than"},
		{"unknown role", []string{"--redis-url", "redis://127.0.0.1:1"}, map[string]string{"FUSEBOX_TOKENS": "ops:root:0123456789abcdef0"}, "role"},
		{"bad limit env", nil, map[string]string{"FUSEBOX_MAX_BREAKERS": "lots"}, "FUSEBOX_MAX_BREAKERS"},
		{"negative limit", []string{"--max-breakers-per-agent", "-5"}, nil, "--max-breakers-per-agent"},
		{"short retention", []string{"--retention", "10s"}, nil, "limits.retention"},
		{"bad retention env", nil, map[string]string{"FUSEBOX_RETENTION": "a day"}, "FUSEBOX_RETENTION"},
		{"zero metrics cap", []string{"--metrics-max-breakers", "0"}, nil, "limits.metrics_max_breakers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestOptions_LimitsFromFlagsEnvAndFile(t *testing.T) {
	file := config.Limits{MaxBreakers: 50, MaxBreakersPerAgent: 5, Retention: time.Hour, MetricsMaxBreakers: 10}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want config.Limits
	}{
		{"the file's when nothing else says", nil, nil, file},
		{"a variable wins over the file", nil, map[string]string{"FUSEBOX_MAX_BREAKERS": "70", "FUSEBOX_RETENTION": "0s"},
			config.Limits{MaxBreakers: 70, MaxBreakersPerAgent: 5, Retention: 0, MetricsMaxBreakers: 10}},
		{"a flag wins over its variable", []string{"--max-breakers", "90", "--max-breakers-per-agent", "0", "--metrics-max-breakers", "3"},
			map[string]string{"FUSEBOX_MAX_BREAKERS": "70"}, config.Limits{MaxBreakers: 90, MaxBreakersPerAgent: 0, Retention: time.Hour, MetricsMaxBreakers: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.limits(file); got != tc.want {
				t.Fatalf("limits = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRun_TheExampleConfigStartsAsShipped: examples/fusebox.yaml starts
// with --dev and nothing else set: no key, no token variable.
func TestRun_TheExampleConfigStartsAsShipped(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--dev", "--config", "../../examples/fusebox.yaml", "--listen", "127.0.0.1:0", "--dev-redis-addr", "127.0.0.1:0"},
			func(k string) string { return map[string]string{"FUSEBOX_LOG_FORMAT": "json"}[k] }, pw)
		pw.Close()
	}()
	apiRe := regexp.MustCompile(`API:\s+(http://\S+)`)
	var apiURL string
	sc := bufio.NewScanner(pr)
	go func() {
		<-time.After(10 * time.Second)
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	var out strings.Builder
	for apiURL == "" && sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := apiRe.FindStringSubmatch(sc.Text()); m != nil {
			apiURL = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if apiURL == "" {
		cancel()
		t.Fatalf("the example config did not start: %v\n%s", <-done, out.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
