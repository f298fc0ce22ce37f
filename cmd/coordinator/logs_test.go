package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/internal/logging/logtest"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// inProcess is run() in this process, its stderr collected.
type inProcess struct {
	api    string
	sink   *logtest.Sink
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startRun runs the coordinator with args and env (nothing else set) and
// waits for its startup line.
func startRun(t *testing.T, args []string, env map[string]string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{sink: &logtest.Sink{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, args, func(k string) string { return env[k] }, p.sink) }()
	t.Cleanup(func() { p.stop(t) })
	testcluster.EventuallyEvery(t, 10*time.Second, 5*time.Millisecond, "the startup line", func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("run returned %v before it started:\n%s", err, p.sink)
		default:
		}
		for _, line := range strings.Split(p.sink.String(), "\n") {
			if l, err := logtest.Parse(line); err == nil && l.Str("message") == "coordinator starting" {
				p.api = l.Str("api")
			}
		}
		return p.api != ""
	})
	return p
}

// stop cancels run, waits for it to return and gives its log lines.
func (p *inProcess) stop(t *testing.T) []logtest.Line {
	t.Helper()
	p.once.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("run did not return after cancellation:\n%s", p.sink)
		}
	})
	if p.err != nil {
		t.Fatalf("run: %v\n%s", p.err, p.sink)
	}
	return logtest.Lines(t, p.sink.String())
}

func tokensEnv(redisURL string) map[string]string {
	return map[string]string{"FUSEBOX_REDIS_URL": redisURL, "FUSEBOX_LISTEN": "127.0.0.1:0", "FUSEBOX_TOKENS": "app:agent:" + agentToken}
}

func TestParseOptions_DefaultRedisIsTheSidecars(t *testing.T) {
	o, err := parseOptions(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// cmd/agent's test checks its default against the same constant.
	if o.redisURL != defaults.RedisURL {
		t.Fatalf("default --redis-url %q, want %q", o.redisURL, defaults.RedisURL)
	}
	if o.log.Level != "" || o.log.Format != "json" {
		t.Fatalf("default logging %+v, want info (empty) and json", o.log)
	}
}

func TestRun_StartupLineHidesTheRedisPassword(t *testing.T) {
	const password = "redis-pw-never-log-me-77"
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", password))
	url := "redis://default:" + password + "@" + srv.Addr
	p := startRun(t, nil, tokensEnv(url))
	// The password is in use: Redis answers.
	resp, err := http.Get(p.api + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz with the password: %d", resp.StatusCode)
	}
	lines := p.stop(t)
	start, ok := logtest.Find(lines, "coordinator starting")
	if !ok {
		t.Fatalf("no startup line:\n%s", p.sink)
	}
	if got, want := start.Str("redis"), "redis://default:xxxxx@"+srv.Addr; got != want {
		t.Fatalf("startup redis %q, want %q", got, want)
	}
	for _, k := range []string{"api", "id", "config", "prefix", "dev"} {
		if _, ok := start[k]; !ok {
			t.Fatalf("startup line without %s: %v", k, start)
		}
	}
	if strings.Contains(p.sink.String(), password) {
		t.Fatalf("the Redis password reached the log:\n%s", p.sink)
	}
	logtest.CheckComponents(t, lines, "coordinator")
}

func TestRun_LogLevel(t *testing.T) {
	srv := redistest.Start(t)
	t.Run("writes no debug line by default", func(t *testing.T) {
		lines := startRun(t, nil, tokensEnv(srv.URL())).stop(t)
		if n := logtest.Levels(lines)["debug"]; n != 0 {
			t.Fatalf("%d debug lines by default", n)
		}
		if _, ok := logtest.Find(lines, "coordinator stopped"); !ok {
			t.Fatalf("lines %v", lines)
		}
	})
	t.Run("writes debug lines with --log-level debug", func(t *testing.T) {
		lines := startRun(t, []string{"--log-level", "debug"}, tokensEnv(srv.URL())).stop(t)
		if _, ok := logtest.Find(lines, "effective configuration"); !ok {
			t.Fatalf("no debug line at debug level: %v", lines)
		}
		logtest.CheckComponents(t, lines, "coordinator")
	})
	t.Run("takes FUSEBOX_LOG_LEVEL", func(t *testing.T) {
		env := tokensEnv(srv.URL())
		env["FUSEBOX_LOG_LEVEL"] = "debug"
		lines := startRun(t, nil, env).stop(t)
		if _, ok := logtest.Find(lines, "effective configuration"); !ok {
			t.Fatalf("no debug line with FUSEBOX_LOG_LEVEL=debug: %v", lines)
		}
	})
	t.Run("refuses an unknown level", func(t *testing.T) {
		err := run(context.Background(), []string{"--log-level", "loud"}, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--log-level") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestReadyz_FailsFastNamingRedis: /readyz answers 503 within a second,
// as problem+json naming redis, both when Redis is gone and when it
// accepts connections but never answers.
func TestReadyz_FailsFastNamingRedis(t *testing.T) {
	check := func(t *testing.T, api string) (status int, body string, took time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := http.Get(api + "/readyz")
		took = time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if took > time.Second {
			t.Fatalf("/readyz took %s (status %d)", took, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("503 as %q", ct)
			}
			var pb struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal(b, &pb); err != nil || pb.Status != 503 || !strings.Contains(pb.Detail, "redis") {
				t.Fatalf("problem %s (%v): want it to name redis", b, err)
			}
		}
		return resp.StatusCode, string(b), took
	}
	t.Run("redis-server stopped", func(t *testing.T) {
		srv := redistest.Start(t)
		p := startRun(t, nil, tokensEnv(srv.URL()))
		if s, body, _ := check(t, p.api); s != http.StatusOK {
			t.Fatalf("/readyz before the stop: %d %s", s, body)
		}
		srv.Stop(t)
		var took time.Duration
		testcluster.EventuallyEvery(t, 5*time.Second, 20*time.Millisecond, "/readyz answers 503", func() bool {
			var s int
			s, _, took = check(t, p.api)
			return s == http.StatusServiceUnavailable
		})
		t.Logf("503 in %s", took)
	})
	t.Run("redis accepts but never answers", func(t *testing.T) {
		addr := blackhole(t)
		p := startRun(t, nil, tokensEnv("redis://"+addr))
		for range 3 {
			s, body, took := check(t, p.api)
			if s != http.StatusServiceUnavailable || !strings.Contains(body, "no answer within") {
				t.Fatalf("/readyz on a silent redis: %d %s", s, body)
			}
			t.Logf("503 in %s", took)
		}
		// And the startup warning names what it waited for.
		testcluster.Eventually(t, 5*time.Second, "a warning naming redis", func() bool {
			for _, l := range logtest.Lines(t, p.sink.String()) {
				if l.Str("level") == "warn" && l.Str("dependency") == "redis" && l.Str("redis") == "redis://"+addr {
					return true
				}
			}
			return false
		})
	})
}

// blackhole accepts connections and never writes a byte.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestProcess_OnlyJSONOnStderrWhenRedisIsDown runs the coordinator as its
// own process against a Sentinel that is not there: go-redis logs each
// failed lookup, and every line on stderr, go-redis's included, is JSON
// with a millisecond timestamp and one component.
func TestProcess_OnlyJSONOnStderrWhenRedisIsDown(t *testing.T) {
	const secret = "sentinel-pw-never-log-me-55"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	p := startProcess(t, "c-down", map[string]string{
		"FUSEBOX_REDIS_URL": "redis+sentinel://" + closed + "?master_name=mymaster&password=" + secret,
		"FUSEBOX_TOKENS":    "app:agent:" + agentToken,
	})
	testcluster.Eventually(t, 10*time.Second, "go-redis logs the failed sentinel lookup", func() bool {
		return p.logged("GetMasterAddrByName")
	})
	testcluster.Eventually(t, 10*time.Second, "the startup warning", func() bool { return p.logged("redis not reachable yet") })
	lines := logtest.Lines(t, p.logs())
	logtest.CheckComponents(t, lines, "coordinator", "go-redis")
	var redisLine, warning logtest.Line
	for _, l := range lines {
		if l.Str("component") == "go-redis" && strings.Contains(l.Str("message"), "GetMasterAddrByName") {
			redisLine = l
		}
		if l.Str("dependency") == "redis" {
			warning = l
		}
	}
	if redisLine == nil || redisLine.Str("level") != "warn" {
		t.Fatalf("go-redis line %v", redisLine)
	}
	if warning == nil || warning.Str("level") != "warn" || !strings.Contains(warning.Str("redis"), "password=xxxxx") {
		t.Fatalf("the warning about Redis does not name it, redacted: %v", warning)
	}
	if strings.Contains(p.logs(), secret) {
		t.Fatalf("the sentinel password reached the log:\n%s", p.logs())
	}
	if n := logtest.Levels(lines)["debug"]; n != 0 {
		t.Fatalf("%d debug lines by default", n)
	}
}

// TestRun_RedisWarningsNameTheAddress: while running, the control
// loop's warnings about a Redis that stopped answering name it, with its
// address and without its password.
func TestRun_RedisWarningsNameTheAddress(t *testing.T) {
	const password = "redis-pw-never-log-me-78"
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", password))
	p := startRun(t, []string{"--tick", "50ms"}, tokensEnv("redis://default:"+password+"@"+srv.Addr))
	srv.Stop(t)
	want := "redis://default:xxxxx@" + srv.Addr
	var warning logtest.Line
	testcluster.Eventually(t, 10*time.Second, "the loop's warning about redis", func() bool {
		for _, raw := range strings.Split(p.sink.String(), "\n") {
			if l, err := logtest.Parse(raw); err == nil && l.Str("dependency") == "redis" && strings.HasPrefix(l.Str("message"), "redis: ") {
				warning = l
				return true
			}
		}
		return false
	})
	if warning.Str("level") != "warn" || warning.Str("redis") != want || warning.Str("component") != "coordinator" {
		t.Fatalf("the warning %v does not name redis %s", warning, want)
	}
	lines := p.stop(t)
	logtest.CheckComponents(t, lines, "coordinator", "go-redis")
	if strings.Contains(p.sink.String(), password) {
		t.Fatalf("the Redis password reached the log:\n%s", p.sink)
	}
}
