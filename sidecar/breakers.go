package sidecar

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/agentlib"
)

// Granularity is what one of a provider's breakers stands for.
type Granularity string

const (
	// PerProvider: one breaker for the provider (the default).
	PerProvider Granularity = "per_provider"
	// PerModel: one breaker per model the provider is asked for, named
	// ModelBreakerName(breaker, model), so an outage of one model does
	// not take the provider's other models down with it.
	PerModel Granularity = "per_model"
)

// maxBreakerName is the longest valid breaker name.
const maxBreakerName = 128

// ModelBreakerName is the breaker of one model at a provider whose
// breakers are per model: "<breaker>.<model>", the model as sent to the
// provider, with every character outside A-Z a-z 0-9 . _ - replaced by
// "_" ("ollama.llama3.2_1b"); a name over 128 characters is cut and ends
// with "-" and 8 hex digits of the model's SHA-256, so it stays a valid
// breaker name and one per model.
func ModelBreakerName(breaker, model string) string {
	var b strings.Builder
	b.Grow(len(breaker) + 1 + len(model))
	b.WriteString(breaker)
	b.WriteByte('.')
	for _, r := range model {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) <= maxBreakerName {
		return name
	}
	sum := sha256.Sum256([]byte(model))
	return name[:maxBreakerName-9] + "-" + hex.EncodeToString(sum[:4])
}

// providerBreakers holds a provider's breaker handles: one, or one per
// model, created on a model's first use (a map read per request after
// that) up to the provider's MaxModelBreakers; models beyond it share the
// provider's own breaker.
type providerBreakers struct {
	p     *Provider
	agent *agentlib.Agent
	log   zerolog.Logger
	base  *agentlib.Breaker // the provider's breaker; per model, the overflow's

	models   sync.Map // the provider's model → *agentlib.Breaker
	mu       sync.Mutex
	n        int // guarded by mu; per-model breakers made
	overflow atomic.Bool
}

func newProviderBreakers(p *Provider, a *agentlib.Agent, log zerolog.Logger) (*providerBreakers, error) {
	base, err := a.Breaker(p.Breaker)
	if err != nil {
		return nil, err
	}
	pb := &providerBreakers{p: p, agent: a, log: log, base: base}
	if p.Granularity == PerModel {
		// The models the file names are mirrored from the start.
		for _, m := range p.configuredModels() {
			pb.get(m)
		}
	}
	return pb, nil
}

// get returns the breaker for one of the provider's models.
func (pb *providerBreakers) get(model string) *agentlib.Breaker {
	if pb.p.Granularity != PerModel {
		return pb.base
	}
	if b, ok := pb.models.Load(model); ok {
		return b.(*agentlib.Breaker)
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if b, ok := pb.models.Load(model); ok {
		return b.(*agentlib.Breaker)
	}
	if pb.n >= pb.p.MaxModelBreakers {
		if pb.overflow.CompareAndSwap(false, true) {
			pb.log.Warn().Str("provider", pb.p.Name).Int("max_models", pb.p.MaxModelBreakers).Str("model", model).Str("breaker", pb.p.Breaker).
				Msg("more models than per-model breakers: the others share the provider's breaker")
		}
		return pb.base
	}
	b, err := pb.agent.Breaker(ModelBreakerName(pb.p.Breaker, model))
	if err != nil { // cannot happen: ModelBreakerName is always valid
		return pb.base
	}
	pb.n++
	pb.models.Store(model, b)
	return b
}

// spread records o, a failure that is the key's or the account's rather
// than one model's (a 401, an exhausted quota or billing), on every other
// breaker of the provider this sidecar knows: each model's it made, and
// the provider's own. Each one that is closed records it as one call, so
// it opens the way the breaker that met the failure does (misconfigured,
// or for the quota's long Retry-After); one already open or probing is
// left alone. Models this sidecar has not used yet, and other sidecars'
// models, learn it from their own first call. It returns how many
// breakers recorded it. Per provider, there is no other breaker.
func (pb *providerBreakers) spread(from *agentlib.Breaker, o agentlib.Outcome) int {
	if pb.p.Granularity != PerModel {
		return 0
	}
	n := 0
	record := func(b *agentlib.Breaker) {
		if b == from || !b.RetryAllowed() {
			return
		}
		done, err := b.Allow()
		if err != nil {
			return
		}
		done(o)
		n++
	}
	record(pb.base)
	pb.models.Range(func(_, v any) bool {
		record(v.(*agentlib.Breaker))
		return true
	})
	return n
}
