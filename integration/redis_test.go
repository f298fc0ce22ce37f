//go:build integration

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Suite 7: Redis with Sentinel (a primary, a replica, three sentinels) and
// a failover during traffic: fusebox follows the new primary and keeps
// working.
func TestSuite7_SentinelFailover(t *testing.T) {
	sentinelURL := "redis+sentinel://sentinel-0:26379?master_name=mymaster&addr=sentinel-1:26379&addr=sentinel-2:26379"
	e := newEnvWith(t, options{noRedis: true, redisURL: sentinelURL}, func(e *env) {
		// Sentinel monitors by IP: Docker's DNS forgets a stopped
		// container's name, and a Sentinel that resolves hostnames stalls
		// on it instead of failing over.
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
	l, start := e.warmLoad()
	e.admin("/v1/breakers/openai/force-open", `{"reason":"before the failover"}`)
	eventually(t, 10*time.Second, "the override reaches every sidecar", func() bool { return l.servedBy(time.Now().Add(-200*time.Millisecond), "anthropic", 3) })
	e.admin("/v1/breakers/openai/release", `{"reason":"before the failover"}`)
	eventually(t, 10*time.Second, "released", func() bool { return l.servedBy(time.Now().Add(-200*time.Millisecond), "openai", 3) })

	primary := e.byName("redis-primary")
	if err := primary.c.Stop(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	// The cluster works again once the sentinels promoted the replica: an
	// override made now reaches every sidecar.
	eventually(t, 60*time.Second, "the coordinators write to the new primary", func() bool {
		return e.tryAdmin("/v1/breakers/openai/force-open", `{"reason":"after the failover"}`)
	})
	promoted := time.Since(failed)
	after := time.Now()
	eventually(t, 15*time.Second, "the override reaches every sidecar", func() bool { return l.servedBy(after, "anthropic", 3) })
	t.Logf("suite 7: the sentinels' failover took effect for fusebox %s after the primary stopped; every sidecar followed an override made on the new primary %s later",
		promoted.Round(100*time.Millisecond), time.Since(after).Round(time.Millisecond))
	if s := e.state("openai"); s != "forced_open" {
		t.Fatalf("state on the new primary: %q", s)
	}
	f := l.failures(start)
	t.Logf("suite 7: %d of %d requests failed because of fusebox itself", len(f), len(l.since(start)))
	if len(f) != 0 {
		t.Fatalf("first failure: %+v", f[0])
	}
}

// Suite 8: Redis Cluster (three primaries): breakers spread over slots on
// every node trip and recover correctly, each breaker's changes on its own
// shard channel, followed by the sidecars that use it and the
// coordinators.
func TestSuite8_RedisCluster(t *testing.T) {
	clusterURL := "redis+cluster://redis-0:6379?addr=redis-1:6379&addr=redis-2:6379"
	e := newEnvWith(t, options{noRedis: true, redisURL: clusterURL}, func(e *env) {
		var nodes []*node
		for i := range 3 {
			name := fmt.Sprintf("redis-%d", i)
			nodes = append(nodes, e.startRedis(name, "--cluster-enabled", "yes", "--cluster-config-file", "/data/nodes.conf",
				"--cluster-node-timeout", "2000", "--cluster-announce-hostname", name, "--cluster-preferred-endpoint-type", "hostname"))
		}
		e.formCluster(nodes)
	})
	// Breaker names whose slots live on each of the three nodes.
	admin := redis.NewClient(&redis.Options{Addr: e.hostAddr(e.byName("redis-0"), "6379/tcp")})
	defer admin.Close()
	owner := e.slotOwners(admin)
	var names []string
	seen := map[int]bool{}
	for i := 0; len(seen) < 3 && i < 1000; i++ {
		n := fmt.Sprintf("svc-%d", i)
		slot, err := admin.ClusterKeySlot(e.ctx, "fusebox:{"+n+"}:state").Result()
		if err != nil {
			t.Fatal(err)
		}
		if o := owner(int(slot)); !seen[o] {
			seen[o] = true
			names = append(names, n)
		}
	}
	for _, p := range []string{"openai", "anthropic"} {
		slot, _ := admin.ClusterKeySlot(e.ctx, "fusebox:{"+p+"}:state").Result()
		t.Logf("suite 8: breaker %s lives on node %d", p, owner(int(slot)))
	}
	l, start := e.warmLoad()

	// A real trip and recovery of the sidecars' breaker.
	e.fault("openai", `{"kind":"status","status":503}`)
	eventually(t, 10*time.Second, "openai trips", func() bool { return e.state("openai") != "closed" })
	eventually(t, 10*time.Second, "every sidecar on the fallback", func() bool { return l.servedBy(time.Now().Add(-200*time.Millisecond), "anthropic", 3) })
	e.heal("openai")
	healed := time.Now()
	eventually(t, 15*time.Second, "every sidecar back", func() bool { return l.servedBy(healed, "openai", 3) })

	// Sharded pub/sub: each breaker's changes go on its own shard channel,
	// followed on the node that owns it by the sidecars that use it and
	// the coordinators; nobody listens on the plain channel.
	nodeClient := func(i int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: e.hostAddr(e.byName(fmt.Sprintf("redis-%d", i)), "6379/tcp")})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	shardSubs := func(name string) int64 {
		ch := "fusebox:{" + name + "}:changes"
		slot, err := admin.ClusterKeySlot(e.ctx, ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		n, err := nodeClient(owner(int(slot))).PubSubShardNumSub(e.ctx, ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	eventually(t, 10*time.Second, "3 sidecars and 2 coordinators follow openai's shard channel", func() bool { return shardSubs("openai") >= 5 })
	t.Logf("suite 8: openai's shard channel has %d subscribers on its node", shardSubs("openai"))
	for i := range 3 {
		if n, err := nodeClient(i).PubSubNumSub(e.ctx, "fusebox:changes").Result(); err != nil || n["fusebox:changes"] != 0 {
			t.Fatalf("redis-%d: plain channel subscribers %v (%v)", i, n, err)
		}
	}

	// Breakers on every node: trip through reports, read, recover.
	for i, n := range names {
		e.report(n, 5)
		eventually(t, 10*time.Second, n+" open", func() bool { return e.state(n) == "open" })
		t.Logf("suite 8: breaker %s (node %d) tripped", n, i)
	}
	// No sidecar uses them: only the coordinators follow them.
	for _, n := range names {
		eventually(t, 10*time.Second, "both coordinators follow "+n, func() bool { return shardSubs(n) == 2 })
	}
	for _, n := range names {
		eventually(t, 10*time.Second, n+" half-open after its open time", func() bool { return e.state(n) == "half_open" })
		e.admin("/v1/breakers/"+n+"/reset", `{"reason":"recovered"}`)
		if s := e.state(n); s != "closed" {
			t.Fatalf("%s after reset: %s", n, s)
		}
	}
	if f := l.failures(start); len(f) != 0 {
		t.Fatalf("%d requests failed; first: %+v", len(f), f[0])
	}
}

// newEnvWith is newEnv with a hook that starts the suite's own Redis
// before the coordinators.
func newEnvWith(t *testing.T, o options, redisUp func(e *env)) *env {
	o.redisHook = redisUp
	return newEnv(t, o)
}

func (e *env) byName(name string) *node {
	for _, n := range e.extra {
		if n.name == name {
			return n
		}
	}
	e.t.Fatalf("no container %s", name)
	return nil
}

// tryAdmin is admin that reports failure instead of failing the test.
func (e *env) tryAdmin(path, body string) bool {
	for _, c := range e.coords {
		req, _ := newAdminRequest(c.url+path, body)
		resp, err := httpClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return true
		}
	}
	return false
}

// report sends failures for a breaker as an agent would.
func (e *env) report(name string, failures int) {
	e.t.Helper()
	e.reportAs("it", fmt.Sprintf(`{"name":%q,"fail":%d,"trailing_fail":%d}`, name, failures, failures))
}

// reportAs sends one breaker's part of a report as the agent named.
func (e *env) reportAs(agent, part string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"agent":%q,"breakers":[%s]}`, agent, part)
	req, _ := newAdminRequest(e.coords[0].url+"/v1/reports", body)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("report: %v %v", resp, err)
	}
	resp.Body.Close()
}

// formCluster makes three Redis nodes one cluster: MEET by IP, one third
// of the slots each, and waits for cluster_state:ok everywhere.
func (e *env) formCluster(nodes []*node) {
	e.t.Helper()
	ctx := e.ctx
	var clients []*redis.Client
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: e.hostAddr(n, "6379/tcp")})
		e.t.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	for _, n := range nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, e.ip(n), "6379").Err(); err != nil {
			e.t.Fatalf("cluster meet: %v", err)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, c := range clients {
		if err := c.ClusterAddSlotsRange(ctx, ranges[i][0], ranges[i][1]).Err(); err != nil {
			e.t.Fatalf("add slots: %v", err)
		}
	}
	eventually(e.t, 30*time.Second, "cluster_state:ok on every node", func() bool {
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
}

// ip is a container's address on the ctl network.
func (e *env) ip(n *node) string {
	e.t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "`+e.ctl+`").IPAddress}}`, n.c.GetContainerID()).Output()
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// slotOwners maps a slot to the index of the node (redis-N) that serves it.
func (e *env) slotOwners(c *redis.Client) func(int) int {
	e.t.Helper()
	shards, err := c.ClusterShards(context.Background()).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return func(slot int) int {
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if slot < int(r.Start) || slot > int(r.End) {
					continue
				}
				for _, n := range sh.Nodes {
					if n.Role != "master" {
						continue
					}
					for i := range 3 {
						if n.Hostname == fmt.Sprintf("redis-%d", i) || n.Endpoint == fmt.Sprintf("redis-%d", i) {
							return i
						}
					}
				}
				return int(r.Start) / 5461
			}
		}
		return -1
	}
}
