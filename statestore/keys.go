package statestore

import (
	"fmt"

	"github.com/fusebox-io/fusebox/report"
)

// DefaultPrefix starts every key and the channel name unless Options says
// otherwise.
const DefaultPrefix = "fusebox"

// ErrInvalidName is returned for a breaker name outside
// [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
var ErrInvalidName = fmt.Errorf("statestore: invalid breaker name (want 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)")

// ValidName reports whether name can name a breaker (report.ValidName):
// the character set keeps names safe inside a Redis hash tag, a URL path
// and a log line.
func ValidName(name string) bool { return report.ValidName(name) }

// keys returns a breaker's keys in the order every script expects.
func (s *Store) keys(name string) []string {
	base := s.prefix + ":{" + name + "}:"
	return []string{base + "state", base + "events", base + "window", base + "permit"}
}

func (s *Store) seqKey(name, agent string) string { return s.prefix + ":{" + name + "}:seq:" + agent }
func (s *Store) failersKey(name string) string    { return s.prefix + ":{" + name + "}:failers" }
func (s *Store) localKey(name, agent string) string {
	return s.prefix + ":{" + name + "}:local:" + agent
}
func (s *Store) stateKey(name string) string  { return s.prefix + ":{" + name + "}:state" }
func (s *Store) eventsKey(name string) string { return s.prefix + ":{" + name + "}:events" }
func (s *Store) registryKey() string          { return s.prefix + ":breakers" }

// registryKeys are the registry's keys, in one Redis Cluster slot: the
// set's own name is the hash tag of the others. In register.lua's order:
// the set, owners, counts, the index by name, the generation, the log.
func (s *Store) registryKeys() []string {
	r := s.registryKey()
	return []string{r, "{" + r + "}:owner", "{" + r + "}:count", "{" + r + "}:index", "{" + r + "}:gen", "{" + r + "}:log"}
}
func (s *Store) defaultPolicyKey() string { return s.prefix + ":default-policy" }

// changesChannel is the shard channel of one breaker's changes (sharded
// pub/sub): in the breaker's hash tag, so the script that changes it can
// SPUBLISH there.
func (s *Store) changesChannel(name string) string { return s.prefix + ":{" + name + "}:changes" }

// registryChannel is the shard channel on which register.lua announces
// new names (sharded pub/sub), in the registry's slot.
func (s *Store) registryChannel() string { return "{" + s.registryKey() + "}:registered" }

// nameOfChannel is the breaker whose shard channel ch is, or "".
func (s *Store) nameOfChannel(ch string) string {
	pre, post := s.prefix+":{", "}:changes"
	if len(ch) <= len(pre)+len(post) || ch[:len(pre)] != pre || ch[len(ch)-len(post):] != post {
		return ""
	}
	if n := ch[len(pre) : len(ch)-len(post)]; ValidName(n) {
		return n
	}
	return ""
}
