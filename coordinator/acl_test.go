package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// AgentACL is the Redis ACL the README's security section gives agents:
// read the breakers' keys, subscribe to the change channel, nothing else
// (prefix fusebox). The coordinators log in as a user with write access.
var AgentACL = []string{
	"--user", "default", "off",
	"--user", "coordinator", "on", ">coordinator-secret-0123", "~*", "&*", "+@all",
	"--user", "agent", "on", ">agent-secret-0123", "resetkeys", "%R~fusebox:*", "resetchannels", "&fusebox:changes",
	"nocommands", "+hello", "+auth", "+ping", "+time", "+hmget", "+get", "+subscribe", "+unsubscribe",
}

// Agents once held Redis write credentials because the
// traffic permit script ran from the agent. Permits now go through the
// coordinators (POST /v1/permits), so an agent that may only read and
// subscribe mirrors, reports, gets the one permit of a half-open window
// and closes the breaker with its probe. Before, askPermit's EVALSHA was
// refused (NOPERM) and no probe ever ran.
func TestAgents_RunOnReadOnlyRedisCredentials(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{
		ConfigYAML: "defaults:\n  open_timeout: 100ms\n  max_open_timeout: 100ms\n  half_open: traffic\n",
		RedisArgs:  AgentACL, RedisUser: "coordinator", RedisPassword: "coordinator-secret-0123",
	})
	agentURL := "redis://agent:agent-secret-0123@" + c.Redis.Addr
	ctx := context.Background()

	// What the agent's user may not do.
	rdb := redis.NewClient(&redis.Options{Addr: c.Redis.Addr, Username: "agent", Password: "agent-secret-0123"})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.HMGet(ctx, "fusebox:{openai}:state", "state").Err(); err != nil {
		t.Fatalf("the agent user cannot read: %v", err)
	}
	for what, err := range map[string]error{
		"HSET":      rdb.HSet(ctx, "fusebox:{openai}:state", "state", "closed").Err(),
		"DEL":       rdb.Del(ctx, "fusebox:{openai}:state").Err(),
		"PUBLISH":   rdb.Publish(ctx, "fusebox:changes", "{}").Err(),
		"EVAL":      rdb.Eval(ctx, "return 1", nil).Err(),
		"FLUSHALL":  rdb.FlushAll(ctx).Err(),
		"SET cache": rdb.Set(ctx, "fusebox:x", "1", 0).Err(),
	} {
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s as the agent user: %v, want NOPERM", what, err)
		}
	}
	agentStore, _ := statestore.New(rdb, statestore.Options{})
	if _, err := agentStore.AcquirePermit(ctx, "openai", statestore.DefaultPolicy(), "a1", "g", 1, "n"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("the permit script run with the agent's credentials: %v, want NOPERM", err)
	}

	a, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: agentURL, AgentID: "ro-agent", Token: testcluster.AgentToken, ResyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := a.Breaker("openai")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if done, err := b.Allow(); err == nil {
			done(agentlib.Failure(errors.New("HTTP 503")))
		}
	}
	testcluster.Eventually(t, 3*time.Second, "the agent's failures trip the cluster", func() bool {
		return c.Snapshot(t, "openai").State == statestore.StateOpen
	})
	// Wait for the agent's own mirror: an Allow while it still shows
	// closed is an ordinary call, not the probe.
	testcluster.Eventually(t, 3*time.Second, "the agent mirrors the trip", func() bool { return b.State().State != statestore.StateClosed })
	var done func(agentlib.Outcome)
	testcluster.Eventually(t, 3*time.Second, "the agent gets the half-open permit", func() bool {
		if b.State().State != statestore.StateHalfOpen {
			return false
		}
		var err error
		done, err = b.Allow()
		return err == nil
	})
	done(agentlib.Success())
	testcluster.Eventually(t, 3*time.Second, "its probe closes the breaker", func() bool {
		return c.Snapshot(t, "openai").State == statestore.StateClosed
	})
	testcluster.Eventually(t, 3*time.Second, "the agent mirrors it", func() bool { return b.State().State == statestore.StateClosed })
	if redisOK, coordOK := a.Links(); !redisOK || !coordOK || a.Degraded() {
		t.Fatalf("links redis %v coordinator %v degraded %v, want both up", redisOK, coordOK, a.Degraded())
	}
}
