//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The protocol's container suites: the agent–cluster protocol under a
// failover that loses writes, a lost answer, and a half-partition.

// sentinelEnv is suite 7's cluster: a primary, a replica and three
// sentinels monitoring it by IP (see suite 7 for why).
func sentinelEnv(t *testing.T) *env {
	sentinelURL := "redis+sentinel://sentinel-0:26379?master_name=mymaster&addr=sentinel-1:26379&addr=sentinel-2:26379"
	return newEnvWith(t, options{noRedis: true, redisURL: sentinelURL}, func(e *env) {
		primary := e.startRedis("redis-primary")
		primaryIP := e.ip(primary)
		e.startRedis("redis-replica", "--replicaof", primaryIP, "6379")
		conf := `port 26379
sentinel monitor mymaster ` + primaryIP + ` 6379 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
`
		for i := range 3 {
			name := fmt.Sprintf("sentinel-%d", i)
			e.extra = append(e.extra, e.runCmd(redisImage, name, []string{e.ctl}, nil,
				[]testcontainers.ContainerFile{{Reader: strings.NewReader(conf), ContainerFilePath: "/etc/redis/sentinel.conf", FileMode: 0o666}},
				nil, wait.ForLog("+monitor master"), "26379/tcp", testcontainers.WithEntrypoint("/usr/bin/redis-server", "/etc/redis/sentinel.conf", "--sentinel", "--protected-mode", "no")))
		}
	})
}

// servingOnly reports whether, since t, every sidecar answered at least
// k requests and all of them from provider.
func (l *load) servingOnly(t time.Time, provider string, k int) bool {
	per := map[int]int{}
	for _, r := range l.since(t) {
		if r.status != 200 {
			continue
		}
		if r.provider != provider {
			return false
		}
		per[r.sidecar]++
	}
	for i := range 3 {
		if per[i] < k {
			return false
		}
	}
	return true
}

// Suite 10: a Sentinel failover that loses the last write. Replication
// stops (the replica is frozen), an operator forces the breaker open on
// the primary (every sidecar follows), the primary dies and the stale
// replica is promoted: Redis now says closed, at a lower version than
// every agent holds. Every agent follows the promoted primary's state
// (back on the primary provider) within two resyncs of its Redis client
// finding the new primary, and a force and a reset made there reach
// everyone.
func TestSuite10_FailoverThatLosesTheLastWrite(t *testing.T) {
	e := sentinelEnv(t)
	l, start := e.warmLoad()
	replica := e.byName("redis-replica")
	primaryNode := e.byName("redis-primary")
	rdb := redis.NewClient(&redis.Options{Addr: e.hostAddr(replica, "6379/tcp")})
	defer rdb.Close()
	prim := redis.NewClient(&redis.Options{Addr: e.hostAddr(primaryNode, "6379/tcp")})
	defer prim.Close()
	// Replication stops: the replica logs in to the primary with a
	// password the primary refuses, and its link is cut. (Pausing the
	// replica would not do: the kernel keeps what the primary sends.)
	if err := rdb.ConfigSet(e.ctx, "masterauth", "not-the-password-0123").Err(); err != nil {
		t.Fatal(err)
	}
	if err := prim.Do(e.ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the primary has no replica", func() bool {
		info, err := prim.Info(e.ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:0")
	})
	e.admin("/v1/breakers/openai/force-open", `{"reason":"written to the primary only"}`)
	forced := time.Now()
	eventually(t, 10*time.Second, "every sidecar follows the override", func() bool { return l.servingOnly(forced.Add(300*time.Millisecond), "anthropic", 3) })
	docker(t, "kill", primaryNode.c.GetContainerID())
	killed := time.Now()
	sentinel := redis.NewClient(&redis.Options{Addr: e.hostAddr(e.byName("sentinel-0"), "26379/tcp")})
	defer sentinel.Close()
	replicaIP := e.ip(replica)
	var promoted time.Time
	eventually(t, 60*time.Second, "the sentinels promote the replica", func() bool {
		addr, err := sentinel.Do(e.ctx, "SENTINEL", "get-master-addr-by-name", "mymaster").StringSlice()
		if err == nil && len(addr) == 2 && addr[0] == replicaIP {
			promoted = time.Now()
			return true
		}
		return false
	})
	// The promoted primary never saw the override.
	if o, _ := rdb.HGet(e.ctx, "fusebox:{openai}:state", "override").Result(); o != "" {
		t.Fatalf("the promoted replica has override %q: replication did not stop", o)
	}
	eventually(t, 20*time.Second, "every sidecar follows the promoted primary (closed)", func() bool {
		return l.servingOnly(time.Now().Add(-200*time.Millisecond), "openai", 3)
	})
	followed := time.Since(promoted)
	t.Logf("suite 10: primary killed; the sentinels promoted the stale replica %s later; every sidecar followed its older state (closed, lower version) %s after the promotion (resync 300ms, two reads of the older version)",
		promoted.Sub(killed).Round(100*time.Millisecond), followed.Round(10*time.Millisecond))
	// An operator's force and reset on the new primary reach everyone.
	e.admin("/v1/breakers/openai/force-open", `{"reason":"after the failover"}`)
	at := time.Now()
	eventually(t, 10*time.Second, "a force on the new primary reaches everyone", func() bool { return l.servingOnly(at.Add(300*time.Millisecond), "anthropic", 3) })
	e.admin("/v1/breakers/openai/reset", `{"reason":"after the failover"}`)
	at = time.Now()
	eventually(t, 10*time.Second, "a reset on the new primary reaches everyone", func() bool { return l.servingOnly(at.Add(300*time.Millisecond), "openai", 3) })
	t.Logf("suite 10: a reset on the new primary reached every sidecar within %s", time.Since(at).Round(10*time.Millisecond))
	f := l.failures(start)
	t.Logf("suite 10: %d of %d requests failed because of fusebox itself", len(f), len(l.since(start)))
	if len(f) != 0 {
		t.Fatalf("first failure: %+v", f[0])
	}
}

// buildLossyProxy builds the lossy proxy's image from this checkout
// (a static binary in a scratch image: no registry).
func buildLossyProxy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go" // where .ci/run puts it on PATH
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", filepath.Join(dir, "lossyproxy"), "./lossyproxy")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the lossy proxy: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY lossyproxy /lossyproxy\nENTRYPOINT [\"/lossyproxy\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "fusebox/lossyproxy:it"
	build := exec.Command("docker", "build", "-q", "-t", image, dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build the lossy proxy: %v: %s", err, out)
	}
	return image
}

// Suite 11: a report whose answer is lost counts once. Every sidecar
// reports to a proxy before coordinator-0 that lets the coordinator apply
// each failure report and then hangs up without the answer; the sidecar
// resends the same report (same boot and seq) to coordinator-1. Four
// failures leave the threshold-5 breaker closed at exactly 4 (before
// reports had a sequence, the resend tripped it); the fifth trips it with
// failure_count 5.
func TestSuite11_ALostAnswerCountsOnce(t *testing.T) {
	image := buildLossyProxy(t)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", image).Run() })
	var lossy *node
	// The proxy starts before the coordinators and sidecars (it resolves
	// coordinator-0 per request), so the sidecars' first coordinator
	// answers from the start.
	e := newEnv(t, options{agentEnv: map[string]string{"FUSEBOX_COORDINATOR_URL": "http://lossy:8080,http://coordinator-1:8080"}, redisHook: func(e *env) {
		lossy = e.run(image, "lossy", []string{e.ctl}, map[string]string{"LOSSY_TARGET": "http://coordinator-0:8080"}, nil, "8080/tcp")
	}})
	// The sidecars may have started before the proxy: wait until one
	// reaches the cluster through it or its fallback.
	client := &httpClientT{}
	eventually(t, 30*time.Second, "sidecar-0 serves from the primary", func() bool { return client.chat(e.agents[0].url) == "openai" })
	e.fault("openai", `{"kind":"status","status":503,"times":4}`)
	for i := range 4 {
		if p := client.chat(e.agents[0].url); p != "anthropic" {
			t.Fatalf("request %d: served by %q, want the fallback (the primary answers 503)", i, p)
		}
	}
	count := func() int64 {
		var b struct {
			FailureCount int64  `json:"failure_count"`
			Effective    string `json:"effective"`
		}
		req, _ := newAdminRequest(e.coords[1].url+"/v1/breakers/openai", "")
		req.Method = "GET"
		resp, err := httpClient.Do(req)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return b.FailureCount
	}
	eventually(t, 10*time.Second, "four failures counted", func() bool { return count() >= 4 })
	var st struct{ Dropped, Forwarded int64 }
	resp, err := httpClient.Get(lossy.url + "/_lossy/stats")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Dropped < 1 {
		t.Fatalf("the proxy lost no answer (%+v): the suite proved nothing", st)
	}
	time.Sleep(500 * time.Millisecond) // a resend would land within this; then the count must still be 4 (the absence of an event: nothing to poll for)
	if n, s := count(), e.state("openai"); n != 4 || s != "closed" {
		t.Fatalf("after 4 failures with %d answers lost: failure_count %d, state %s; want 4 and closed", st.Dropped, n, s)
	}
	e.fault("openai", `{"kind":"status","status":503,"times":1}`)
	client.chat(e.agents[0].url)
	eventually(t, 10*time.Second, "the fifth failure trips it", func() bool { return e.state("openai") == "open" })
	var trip event
	for _, ev := range e.journal("openai") {
		if ev.Event == "trip" {
			trip = ev
		}
	}
	t.Logf("suite 11: %d of the failure reports' answers were lost and resent; the breaker counted 4, and tripped on the 5th (%s)", st.Dropped, trip.Reason)
}

// httpClientT sends one chat request and says who served it.
type httpClientT struct{}

func (httpClientT) chat(url string) string {
	resp, err := httpClient.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Fusebox-Provider")
}

// Suite 12: a sidecar cut off from its coordinators but not from Redis.
// It cannot report (degraded on that link), but its mirror still follows
// Redis: when another agent trips the breaker it denies the primary, as
// every other sidecar does, though it saw no failure itself (a degraded
// agent that consulted only a fresh local breaker let its calls
// through). Reconnected, it leaves degraded mode.
func TestSuite12_CutFromTheCoordinatorsKeepsDenying(t *testing.T) {
	e := newEnv(t, options{partitionable: true})
	l, start := e.warmLoad()
	cut := e.agents[0]
	// agent-0 reaches the coordinators on ctl0 and on the data network:
	// take them off both (the other sidecars reach them on ctl). Redis
	// stays on ctl0.
	for _, n := range e.coords {
		docker(t, "network", "disconnect", e.ctl0, n.c.GetContainerID())
		docker(t, "network", "disconnect", e.data, n.c.GetContainerID())
	}
	eventually(t, 10*time.Second, "the cut-off sidecar is degraded", func() bool { return metric(t, cut.url, "fusebox_agent_degraded") == 1 })
	before := metric(t, cut.url, `fusebox_sidecar_upstream_calls_total{provider="openai"`)
	// Another agent trips the breaker (its failures, with a Retry-After
	// that keeps the cluster off for 30 s): the cut-off sidecar saw no
	// failure, so its own local breaker is closed, and only its mirror,
	// fed by Redis, can deny.
	e.reportAs("elsewhere", `{"name":"openai","fail":5,"trailing_fail":5,"retry_after_ms":30000,"last_error":"HTTP 503"}`)
	forced := time.Now()
	eventually(t, 5*time.Second, "the cut-off sidecar denies the primary too", func() bool {
		n := 0
		for _, r := range l.since(forced.Add(300 * time.Millisecond)) {
			if r.sidecar == 0 && r.provider == "anthropic" {
				n++
			}
		}
		return n >= 10
	})
	followed := time.Since(forced)
	settled := metric(t, cut.url, `fusebox_sidecar_upstream_calls_total{provider="openai"`)
	// While open, it never calls the primary: three seconds of traffic.
	watchUntil := time.Now().Add(3 * time.Second)
	for time.Now().Before(watchUntil) {
		if n := metric(t, cut.url, `fusebox_sidecar_upstream_calls_total{provider="openai"`); n != settled {
			t.Fatalf("the cut-off sidecar called the open primary (%v -> %v calls)", settled, n)
		}
		time.Sleep(100 * time.Millisecond) // sampling a counter that must not move
	}
	if metric(t, cut.url, "fusebox_agent_degraded") != 1 {
		t.Fatal("the sidecar left degraded mode while cut off")
	}
	t.Logf("suite 12: the sidecar cut off from its coordinators denied the primary %s after another agent tripped it (its calls to it: %v before, %v after)",
		followed.Round(time.Millisecond), before, settled)
	for _, n := range e.coords {
		docker(t, "network", "connect", "--alias", n.name, e.ctl0, n.c.GetContainerID())
		docker(t, "network", "connect", "--alias", n.name, e.data, n.c.GetContainerID())
	}
	eventually(t, 10*time.Second, "reconnected, it leaves degraded mode", func() bool { return metric(t, cut.url, "fusebox_agent_degraded") == 0 })
	e.admin("/v1/breakers/openai/reset", `{"reason":"done"}`)
	after := time.Now()
	eventually(t, 10*time.Second, "every sidecar back on the primary", func() bool { return l.servedBy(after, "openai", 3) })
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed; first: %+v", len(f), f[0])
	}

}
