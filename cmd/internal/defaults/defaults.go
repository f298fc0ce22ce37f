package defaults

import "github.com/fusebox-io/fusebox/statestore"

// RedisURL is where every process that is not `coordinator --dev` finds
// Redis by default: the coordinator and the sidecar alike.
const RedisURL = "redis://127.0.0.1:6379"

// DevRedisAddr is where `coordinator --dev` runs its embedded Redis. It
// is not RedisURL's port, so that --dev never collides with a local
// redis-server; --dev prints the flags that point agents at it.
const DevRedisAddr = "127.0.0.1:6380"

// CoordinatorListen is the coordinator's HTTP address, and
// CoordinatorURL the same as agents call it.
const (
	CoordinatorListen = "127.0.0.1:8080"
	CoordinatorURL    = "http://" + CoordinatorListen
)

// Prefix starts every Redis key; coordinators and agents must match.
const Prefix = statestore.DefaultPrefix
