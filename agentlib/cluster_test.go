package agentlib_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// clusterCoordinator runs one coordinator and its API on a Redis Cluster
// until the test ends.
func clusterCoordinator(t *testing.T, c *redistest.Cluster) (*statestore.Store, string) {
	t.Helper()
	rdb, err := statestore.Dial(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := statestore.New(rdb, statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	coord, err := coordinator.New(coordinator.Config{ID: "c1", TickInterval: 10 * time.Millisecond}, store, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Tokens: testcluster.Tokens}, coord.Service))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- coord.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return store, srv.URL
}

// On Redis Cluster (redis+cluster://) an agent follows the shard channels
// of its own breakers only: a trip reaches the agents that use the
// breaker through pub/sub (their resync is a minute away), an agent that
// does not use it hears nothing, and a breaker created after the agent
// subscribed is followed too.
func TestAgent_OnRedisClusterFollowsOnlyItsBreakers(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	store, url := clusterCoordinator(t, c)
	if !store.Sharded() {
		t.Fatal("a redis+cluster:// store is not sharded")
	}
	agent := func(id string) *agentlib.Agent {
		a, err := agentlib.New(agentlib.Config{
			CoordinatorURL: url, Token: testcluster.AgentToken, RedisURL: c.URL(), AgentID: id,
			ResyncInterval: time.Minute, // only pub/sub can tell them in time
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	subscribers := func(name string) int64 {
		ch := store.ChannelOf(name)
		n, err := c.Nodes[c.NodeOf(t, ch)].Client(t).PubSubShardNumSub(context.Background(), ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	user, other := agent("user"), agent("other")
	openai := breaker(t, user, "openai")
	anthropic := breaker(t, other, "anthropic")
	testcluster.Eventually(t, 5*time.Second, "each agent subscribed to its breaker", func() bool {
		return subscribers("openai") == 1 && subscribers("anthropic") == 1
	})

	trip := func(name string) {
		t.Helper()
		// Through the coordinator, as another agent would: the agents
		// under test learn it from pub/sub alone.
		body := fmt.Sprintf(`{"agent":"someone","breakers":[{"name":%q,"fail":5,"trailing_fail":5}]}`, name)
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/reports", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("report: %s", resp.Status)
		}
	}
	trip("openai")
	testcluster.Eventually(t, 2*time.Second, "the agent that uses openai denies", func() bool { return denied(openai, agentlib.ErrOpen) })
	if n := user.ChangesHeardForTest(); n != 1 {
		t.Fatalf("the user of openai heard %d changes, want its trip", n)
	}
	if anthropic.State().State != statestore.StateClosed || other.ChangesHeardForTest() != 0 {
		t.Fatalf("the agent without openai: anthropic %+v, %d changes heard, want none", anthropic.State(), other.ChangesHeardForTest())
	}

	// A breaker the agent creates now is followed from then on.
	late := breaker(t, other, "ollama")
	testcluster.Eventually(t, 5*time.Second, "the new breaker's shard channel subscribed", func() bool { return subscribers("ollama") == 1 })
	trip("ollama")
	testcluster.Eventually(t, 2*time.Second, "the agent denies on its new breaker", func() bool { return denied(late, agentlib.ErrOpen) })
	if n := other.ChangesHeardForTest(); n != 1 {
		t.Fatalf("the agent heard %d changes, want the trip of its new breaker alone", n)
	}
	if n := user.ChangesHeardForTest(); n != 1 {
		t.Fatalf("the user of openai heard %d changes, want none of ollama's", n)
	}
}

// clusterAgentACL is the README's agent user for Redis Cluster: read the
// breakers' keys, follow their shard channels, learn the slots, nothing
// else.
var clusterAgentACL = []string{
	"--user", "agent", "on", ">agent-secret-0123", "resetkeys", "%R~fusebox:*", "resetchannels", "&fusebox:{*}:changes",
	"nocommands", "+hello", "+auth", "+ping", "+time", "+hmget", "+get", "+ssubscribe", "+sunsubscribe", "+cluster|slots",
}

// On Redis Cluster an agent runs on the read-and-follow credentials the
// README gives it: it mirrors a trip (pub/sub and resync), and its user
// may write nothing.
func TestAgent_OnRedisClusterRunsOnReadOnlyCredentials(t *testing.T) {
	c := redistest.StartCluster(t, 3, redistest.WithArgs(clusterAgentACL...))
	_, url := clusterCoordinator(t, c)
	agentURL := c.URLAs("agent", "agent-secret-0123")
	ctx := context.Background()

	rdb, err := statestore.Dial(agentURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	for what, err := range map[string]error{
		"HSET":     rdb.HSet(ctx, "fusebox:{openai}:state", "state", "closed").Err(),
		"DEL":      rdb.Del(ctx, "fusebox:{openai}:state").Err(),
		"SPUBLISH": rdb.SPublish(ctx, "fusebox:{openai}:changes", "{}").Err(),
		"EVAL":     rdb.Eval(ctx, "return 1", []string{"fusebox:{openai}:state"}).Err(),
	} {
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s as the agent user: %v, want NOPERM", what, err)
		}
	}

	a, err := agentlib.New(agentlib.Config{CoordinatorURL: url, Token: testcluster.AgentToken, RedisURL: agentURL, AgentID: "ro",
		ResyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b := breaker(t, a, "openai")
	for range 5 {
		if done, err := b.Allow(); err == nil {
			done(agentlib.Failure(errProvider))
		}
	}
	testcluster.Eventually(t, 3*time.Second, "the agent's failures trip the cluster and it denies", func() bool { return denied(b, agentlib.ErrOpen) })
	if a.Degraded() {
		t.Fatal("the agent is degraded on read-only cluster credentials")
	}
}
