package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of redis-server processes owned by one
// test: masters only, the slots split evenly between them.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs a Redis Cluster of n masters on free loopback ports
// until the test ends, formed with CLUSTER MEET and ADDSLOTSRANGE, and
// returns once every node sees every other and cluster_state:ok. opts
// apply to every node (ACL users, say; the default user must stay on).
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("redistest: a cluster of %d nodes", n)
	}
	c := &Cluster{}
	for range n {
		// nodes.conf is relative to the server's own --dir.
		node := append([]Option{WithArgs("--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")}, opts...)
		c.Nodes = append(c.Nodes, Start(tb, node...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*redis.Client, n)
	for i, s := range c.Nodes {
		clients[i] = s.Client(tb)
	}
	for _, s := range c.Nodes[1:] {
		host, port, _ := strings.Cut(s.Addr, ":")
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			tb.Fatalf("redistest: cluster meet %s: %v", s.Addr, err)
		}
	}
	const slots = 16384
	for i, cl := range clients {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			tb.Fatalf("redistest: cluster addslotsrange %d %d on %s: %v", lo, hi, c.Nodes[i].Addr, err)
		}
	}
	known := "cluster_known_nodes:" + strconv.Itoa(n)
	for {
		var bad string
		for i, cl := range clients {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, known) {
				bad = fmt.Sprintf("%s: %v %q", c.Nodes[i].Addr, err, info)
				break
			}
			// Every node must also map every slot to its owner.
			shards, err := cl.ClusterShards(ctx).Result()
			covered := 0
			for _, sh := range shards {
				for _, r := range sh.Slots {
					covered += int(r.End-r.Start) + 1
				}
			}
			if err != nil || covered != slots || len(shards) != n {
				bad = fmt.Sprintf("%s sees %d slots in %d ranges (%v)", c.Nodes[i].Addr, covered, len(shards), err)
				break
			}
		}
		if bad == "" {
			return c
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("redistest: the cluster did not form within 30s: %s", bad)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr
	}
	return out
}

// URLAs is URL with a user's credentials.
func (c *Cluster) URLAs(user, password string) string {
	return strings.Replace(c.URL(), "redis+cluster://", "redis+cluster://"+user+":"+password+"@", 1)
}

// URL is the cluster's redis+cluster:// URL (statestore.Dial), naming
// every node.
func (c *Cluster) URL() string {
	u := "redis+cluster://" + c.Nodes[0].Addr
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr
	}
	return u
}

// Client returns a cluster client closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// NodeOf is the index in Nodes of the master that owns key's slot.
func (c *Cluster) NodeOf(tb testing.TB, key string) int {
	tb.Helper()
	ctx := context.Background()
	cl := c.Nodes[0].Client(tb)
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		tb.Fatalf("redistest: cluster keyslot: %v", err)
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		tb.Fatalf("redistest: cluster shards: %v", err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role != "master" {
					continue
				}
				addr := net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				for i, s := range c.Nodes {
					if s.Addr == addr {
						return i
					}
				}
			}
		}
	}
	tb.Fatalf("redistest: no node owns slot %d of %q", slot, key)
	return -1
}

// ClusterBackend runs a Redis Cluster of three masters, as a Backend with
// a cluster client.
func ClusterBackend(tb testing.TB) Backend {
	tb.Helper()
	c := StartCluster(tb, 3)
	return Backend{Name: "redis-cluster", Addr: c.Nodes[0].Addr, Client: c.Client(tb), Cluster: c}
}
