package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/logging/logtest"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/telemetry/otlptest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// wait stops after ctx was cancelled: run returned, every line is in
// the sink. It gives those lines.
func (s sidecarRun) wait(t *testing.T) []logtest.Line {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, s.sink.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return:\n%s", s.sink.String())
	}
	<-s.scanned
	return logtest.Lines(t, s.sink.String())
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestParse_DefaultRedisIsTheCoordinators(t *testing.T) {
	o, err := parse([]string{"--config", "x.yaml"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The coordinator's default: cmd/coordinator checks its own against
	// the same constant.
	if o.redisURL != defaults.RedisURL {
		t.Fatalf("default --redis-url %q, want the coordinator's %q", o.redisURL, defaults.RedisURL)
	}
	// And the one the README documents for both.
	if want := "redis://127.0.0.1:6379"; o.redisURL != want {
		t.Fatalf("default --redis-url %q, want %q", o.redisURL, want)
	}
	if o.coordinator != "http://"+defaults.CoordinatorListen {
		t.Fatalf("default --coordinator-url %q, want the coordinator's listen address %s", o.coordinator, defaults.CoordinatorListen)
	}
	if o.log.Level != "" || o.log.Format != "" {
		t.Fatalf("default logging %+v, want info and json (empty)", o.log)
	}
	for _, bad := range [][]string{{"--log-level", "chatty"}, {"--log-format", "xml"}} {
		if _, err := parse(append([]string{"--config", "x.yaml"}, bad...), func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Fatalf("%v: err %v", bad, err)
		}
	}
}

// TestRun_StartupLineHidesCredentials: Redis with a password (in use: no
// warning about Redis), a coordinator URL with credentials that nobody
// answers (a warning naming it). Neither secret reaches the log; every
// line is JSON with milliseconds and one component.
func TestRun_StartupLineHidesCredentials(t *testing.T) {
	const redisPW, coordPW = "redis-pw-never-log-me-91", "coord-pw-never-log-me-92"
	srv := redistest.Start(t, redistest.WithArgs("--requirepass", redisPW))
	coord := "http://ops:" + coordPW + "@" + closedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startWith(t, ctx, fakeprovider.New(), map[string]string{
		"FUSEBOX_REDIS_URL": "redis://default:" + redisPW + "@" + srv.Addr, "FUSEBOX_COORDINATOR_URL": coord,
	}, nil)
	testcluster.Eventually(t, 5*time.Second, "a warning naming the coordinator", func() bool {
		return strings.Contains(s.sink.String(), `"dependency":"coordinator"`)
	})
	cancel()
	lines := s.wait(t)
	start, ok := logtest.Find(lines, "sidecar starting")
	if !ok {
		t.Fatalf("no startup line:\n%s", s.sink.String())
	}
	want := map[string]string{
		"redis":        "redis://default:xxxxx@" + srv.Addr,
		"coordinators": strings.Replace(coord, coordPW, "xxxxx", 1),
		"prefix":       "fusebox",
	}
	for k, v := range want {
		if start.Str(k) != v {
			t.Fatalf("startup %s = %q, want %q", k, start.Str(k), v)
		}
	}
	if start.Str("config") == "" || start.Str("id") == "" || !strings.HasPrefix(start.Str("listen"), "http://127.0.0.1:") {
		t.Fatalf("startup line %v", start)
	}
	for _, l := range lines {
		if l.Str("dependency") == "redis" {
			t.Fatalf("Redis, with its password, was reported unreachable: %v", l)
		}
		if l.Str("dependency") == "coordinator" && (l.Str("level") != "warn" || l.Str("coordinator") != want["coordinators"]) {
			t.Fatalf("coordinator warning %v", l)
		}
	}
	for _, secret := range []string{redisPW, coordPW} {
		if strings.Contains(s.sink.String(), secret) {
			t.Fatalf("%s reached the log:\n%s", secret, s.sink.String())
		}
	}
	logtest.CheckComponents(t, lines, "sidecar", "agent")
	if n := logtest.Levels(lines)["debug"]; n != 0 {
		t.Fatalf("%d debug lines by default:\n%s", n, s.sink.String())
	}
}

func TestRun_LogLevelDebug(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startWith(t, ctx, fakeprovider.New(), map[string]string{"FUSEBOX_LOG_LEVEL": "debug"}, nil)
	// agentlib's own debug lines come too: a breaker that trips is a
	// mirror change.
	s.cluster.Trip(t, "openai", 10)
	testcluster.Eventually(t, 5*time.Second, "agentlib's debug line", func() bool { return strings.Contains(s.sink.String(), "mirror changed") })
	cancel()
	lines := s.wait(t)
	eff, ok := logtest.Find(lines, "effective configuration")
	if !ok {
		t.Fatalf("no debug line of the sidecar's at debug level:\n%s", s.sink.String())
	}
	if !strings.Contains(s.sink.String(), `"routes":["chat [chat messages]: openai > ollama"]`) {
		t.Fatalf("the routes, their APIs and chains are not in %v", eff)
	}
	logtest.CheckComponents(t, lines, "sidecar", "agent")
	mirror, _ := logtest.Find(lines, "mirror changed")
	if mirror.Str("component") != "agent" || mirror.Str("level") != "debug" {
		t.Fatalf("agentlib's line %v", mirror)
	}
}

type readyBody struct {
	Status   string            `json:"status"`
	Degraded bool              `json:"degraded"`
	Links    map[string]string `json:"links"`
	Down     []string          `json:"down"`
}

func getReady(t *testing.T, url string) readyBody {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("/readyz took %s", took)
	}
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusOK || b.Status != "ready" {
		t.Fatalf("/readyz: %d %+v %v (ready even degraded: it serves on local breakers)", resp.StatusCode, b, err)
	}
	return b
}

func TestRun_ReadyzNamesTheLinkDown(t *testing.T) {
	t.Run("all up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := startWith(t, ctx, fakeprovider.New(), nil, nil)
		var b readyBody
		testcluster.EventuallyEvery(t, 5*time.Second, 20*time.Millisecond, "ready with every link up", func() bool {
			b = getReady(t, s.url)
			return !b.Degraded && b.Links["redis"] == "up" && b.Links["coordinator"] == "up"
		})
		if len(b.Down) != 0 {
			t.Fatalf("%+v", b)
		}
	})
	t.Run("redis stopped", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := startWith(t, ctx, fakeprovider.New(), map[string]string{"FUSEBOX_RESYNC_INTERVAL": "100ms"}, nil)
		s.cluster.Redis.Stop(t)
		var b readyBody
		testcluster.EventuallyEvery(t, 10*time.Second, 20*time.Millisecond, "degraded, naming redis", func() bool {
			b = getReady(t, s.url)
			return b.Degraded && b.Links["redis"] == "down"
		})
		if len(b.Down) == 0 || b.Down[0] != "redis" {
			t.Fatalf("%+v", b)
		}
	})
	t.Run("coordinator unreachable", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := startWith(t, ctx, fakeprovider.New(), map[string]string{
			"FUSEBOX_COORDINATOR_URL": "http://" + closedAddr(t), "FUSEBOX_RESYNC_INTERVAL": "100ms",
		}, nil)
		var b readyBody
		testcluster.EventuallyEvery(t, 10*time.Second, 20*time.Millisecond, "degraded, naming the coordinator", func() bool {
			b = getReady(t, s.url)
			return b.Degraded && b.Links["coordinator"] == "down"
		})
		if b.Links["redis"] != "up" || len(b.Down) != 1 || b.Down[0] != "coordinator" {
			t.Fatalf("%+v", b)
		}
	})
}

// TestRun_LinkDownWarningsNameTheDependency: while running, the warning
// that a link went down names what is unreachable, the Redis URL or the
// coordinators, without their passwords.
func TestRun_LinkDownWarningsNameTheDependency(t *testing.T) {
	const redisPW, coordPW = "redis-pw-never-log-me-93", "coord-pw-never-log-me-94"
	linkDown := func(t *testing.T, s sidecarRun, link string) logtest.Line {
		t.Helper()
		var found logtest.Line
		testcluster.Eventually(t, 10*time.Second, "the "+link+" link-down warning", func() bool {
			for _, raw := range strings.Split(s.sink.String(), "\n") {
				if l, err := logtest.Parse(raw); err == nil && l.Str("message") == "link down: "+link+" unreachable" {
					found = l
					return true
				}
			}
			return false
		})
		return found
	}
	noSecrets := func(t *testing.T, s sidecarRun) {
		t.Helper()
		for _, secret := range []string{redisPW, coordPW} {
			if strings.Contains(s.sink.String(), secret) {
				t.Fatalf("%s reached the log:\n%s", secret, s.sink.String())
			}
		}
	}

	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithArgs("--requirepass", redisPW))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := startWith(t, ctx, fakeprovider.New(), map[string]string{
			"FUSEBOX_REDIS_URL": "redis://default:" + redisPW + "@" + srv.Addr, "FUSEBOX_RESYNC_INTERVAL": "100ms",
		}, nil)
		testcluster.EventuallyEvery(t, 5*time.Second, 20*time.Millisecond, "redis up", func() bool {
			return getReady(t, s.url).Links["redis"] == "up"
		})
		srv.Stop(t)
		l := linkDown(t, s, "redis")
		if want := "redis://default:xxxxx@" + srv.Addr; l.Str("redis") != want || l.Str("level") != "warn" || l.Str("link") != "redis" {
			t.Fatalf("the warning %v does not name redis %s", l, want)
		}
		cancel()
		logtest.CheckComponents(t, s.wait(t), "sidecar", "agent", "go-redis")
		noSecrets(t, s)
	})

	t.Run("coordinator", func(t *testing.T) {
		coord := "http://ops:" + coordPW + "@" + closedAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := startWith(t, ctx, fakeprovider.New(), map[string]string{"FUSEBOX_COORDINATOR_URL": coord, "FUSEBOX_RESYNC_INTERVAL": "100ms"}, nil)
		l := linkDown(t, s, "coordinator")
		if want := strings.Replace(coord, coordPW, "xxxxx", 1); l.Str("coordinators") != want || l.Str("link") != "coordinator" {
			t.Fatalf("the warning %v does not name the coordinator %s", l, want)
		}
		cancel()
		logtest.CheckComponents(t, s.wait(t), "sidecar", "agent", "go-redis")
		noSecrets(t, s)
	})
}

// TestRun_OTelLinesAreJSON: OpenTelemetry's own complaints (here the
// exporter reading a timeout it cannot parse) come out in the sidecar's
// JSON log, component otel, not as text on the process's stderr.
func TestRun_OTelLinesAreJSON(t *testing.T) {
	otlp := otlptest.StartHTTP(t)
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}
	for k, v := range env {
		t.Setenv(k, v) // the exporter reads the process environment
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startWith(t, ctx, fakeprovider.New(), env, nil)
	cancel()
	lines := s.wait(t)
	var got logtest.Line
	for _, l := range lines {
		if l.Str("component") == "otel" && strings.Contains(l.Str("message"), "parse duration") {
			got = l
		}
	}
	if got == nil || got.Str("level") != "error" {
		t.Fatalf("no otel line about the timeout in the log:\n%s", s.sink.String())
	}
	if _, ok := logtest.Find(lines, "tracing on: spans exported over OTLP"); !ok {
		t.Fatalf("tracing is not on:\n%s", s.sink.String())
	}
	logtest.CheckComponents(t, lines, "sidecar", "agent", "otel")
}
