package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

// PolicySpec is a policy as written in the file: a missing field inherits.
type PolicySpec struct {
	ConsecutiveFailures *int                     `yaml:"consecutive_failures"`
	FailureRate         *float64                 `yaml:"failure_rate"`
	MinCalls            *int                     `yaml:"min_calls"`
	Window              *Duration                `yaml:"window"`
	SlowCall            *Duration                `yaml:"slow_call"`
	SlowCallRate        *float64                 `yaml:"slow_call_rate"`
	OpenTimeout         *Duration                `yaml:"open_timeout"`
	MaxOpenTimeout      *Duration                `yaml:"max_open_timeout"`
	HonorRetryAfter     *bool                    `yaml:"honor_retry_after"`
	HalfOpen            *statestore.HalfOpenMode `yaml:"half_open"`
	ProbeTimeout        *Duration                `yaml:"probe_timeout"`
	HangAfter           *Duration                `yaml:"hang_after"`
	MaxRetryAfter       *Duration                `yaml:"max_retry_after"`
	MinAgents           *int                     `yaml:"min_agents"`
	CanaryInterval      *Duration                `yaml:"canary_interval"`
	CanaryMaxInterval   *Duration                `yaml:"canary_max_interval"`
	MisconfiguredOpen   *Duration                `yaml:"misconfigured_open"`
}

// CanarySpec is a breaker's canary probe as written in the file; see
// probe.Spec for each field's meaning and default.
type CanarySpec struct {
	Kind         string            `yaml:"kind"`
	URL          string            `yaml:"url"`
	Method       string            `yaml:"method"`
	Headers      map[string]string `yaml:"headers"`
	HeaderEnv    map[string]string `yaml:"header_env"`
	Body         string            `yaml:"body"`
	ExpectStatus []int             `yaml:"expect_status"`
	APIKeyEnv    string            `yaml:"api_key_env"`
	Model        string            `yaml:"model"`
	Prompt       string            `yaml:"prompt"`
	MaxTokens    int               `yaml:"max_tokens"`
	Timeout      *Duration         `yaml:"timeout"`
}

// breakerSpec is one entry under breakers:.
type breakerSpec struct {
	PolicySpec `yaml:",inline"`
	Canary     *CanarySpec `yaml:"canary"`
}

type file struct {
	Defaults PolicySpec             `yaml:"defaults"`
	Breakers map[string]breakerSpec `yaml:"breakers"`
	Auth     Auth                   `yaml:"auth"`
	Limits   LimitsSpec             `yaml:"limits"`
}

// LimitsSpec is the file's limits: section as written; a missing field
// is its default.
type LimitsSpec struct {
	MaxBreakers         *int      `yaml:"max_breakers"`
	MaxBreakersPerAgent *int      `yaml:"max_breakers_per_agent"`
	Retention           *Duration `yaml:"retention"`
	MetricsMaxBreakers  *int      `yaml:"metrics_max_breakers"`
}

// Limits bound what agents may make the cluster keep.
type Limits struct {
	// MaxBreakers: agents may not register a new breaker once the
	// registry holds this many (configured breakers and operators'
	// overrides always register). 0: no limit. Default 10,000.
	MaxBreakers int
	// MaxBreakersPerAgent: one agent (by its reports' agent id) may have
	// registered at most this many breakers that are still registered.
	// 0: no limit. Default 1,000.
	MaxBreakersPerAgent int
	// Retention: a breaker no agent reported and nothing changed for this
	// long, that the file does not name and no override holds, is
	// deleted. 0: never. Default 24h.
	Retention time.Duration
	// MetricsMaxBreakers: at most this many breakers get a
	// fusebox_breaker_state series (those not closed first). Default
	// 1,000.
	MetricsMaxBreakers int
}

// DefaultLimits are the limits when the file sets none.
func DefaultLimits() Limits {
	return Limits{MaxBreakers: 10_000, MaxBreakersPerAgent: 1_000, Retention: 24 * time.Hour, MetricsMaxBreakers: 1_000}
}

// Validate reports the first limit out of range, naming its field under
// limits:.
func (l Limits) Validate() error {
	switch {
	case l.MaxBreakers < 0:
		return &Error{Field: "limits.max_breakers", Reason: "must be 0 (no limit) or more"}
	case l.MaxBreakersPerAgent < 0:
		return &Error{Field: "limits.max_breakers_per_agent", Reason: "must be 0 (no limit) or more"}
	case l.Retention != 0 && l.Retention < time.Minute:
		return &Error{Field: "limits.retention", Reason: fmt.Sprintf("must be 0 (keep forever) or at least 1m, got %s", l.Retention)}
	case l.MetricsMaxBreakers < 1:
		return &Error{Field: "limits.metrics_max_breakers", Reason: fmt.Sprintf("must be at least 1, got %d", l.MetricsMaxBreakers)}
	}
	return nil
}

// Config is a loaded, validated config file. It is read only once
// loaded: safe for concurrent use.
type Config struct {
	// Defaults is the policy of every breaker the file does not name.
	Defaults statestore.Policy
	// Breakers holds the resolved policy of each breaker the file names.
	Breakers map[string]statestore.Policy
	// Canaries holds the canary of each breaker that has one, with every
	// default filled in.
	Canaries map[string]probe.Spec
	// Auth holds the API tokens; ResolveTokens reads their secrets.
	Auth Auth
	// Limits bound what agents may make the cluster keep.
	Limits Limits

	root *yaml.Node // the file, for where a field is; nil without one
	path string
}

// problems starts a list of problems located in the config's file.
func (c *Config) problems() *problems { return &problems{root: c.root, path: c.path} }

// breakerOrder lists the configured breakers in the file's order.
func (c *Config) breakerOrder() []string {
	order := mapKeys(mapValueNode(c.root, "breakers"))
	for _, n := range slices.Sorted(maps.Keys(c.Breakers)) {
		if !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	return order
}

// Default is the config used when no file is given: built-in defaults.
func Default() *Config {
	return &Config{Defaults: statestore.DefaultPolicy(), Breakers: map[string]statestore.Policy{}, Canaries: map[string]probe.Spec{}, Limits: DefaultLimits()}
}

// Policy returns the policy of a breaker: its own entry, or the defaults.
func (c *Config) Policy(name string) statestore.Policy {
	if p, ok := c.Breakers[name]; ok {
		return p
	}
	return c.Defaults
}

// DefaultPolicy is the policy of every breaker the file does not name.
func (c *Config) DefaultPolicy() statestore.Policy { return c.Defaults }

// Names lists the breakers the file names, sorted.
func (c *Config) Names() []string {
	return slices.Sorted(maps.Keys(c.Breakers))
}

// Error is a problem with the config file, naming the field.
type Error struct {
	Path   string // the file, when read from one
	Field  string // e.g. "breakers.openai.failure_rate"; empty for syntax errors
	Reason string
	Line   int // in the file; 0 when unknown
}

func (e *Error) Error() string {
	where := "config"
	if e.Path != "" {
		where += " " + e.Path
	}
	return where + ": " + e.located()
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Path: path, Reason: err.Error()}
	}
	c, err := Parse(data)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			es.setPath(path)
		}
		return nil, err
	}
	c.path = path
	return c, nil
}

// Parse reads and validates a config file's contents. Unknown fields are
// errors, so a typo never silently falls back to a default. Every problem
// is reported at once, in the file's order (an Errors).
func Parse(data []byte) (*Config, error) {
	var pr problems
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{{Reason: err.Error()}}
	}
	if len(doc.Content) > 0 {
		pr.root = doc.Content[0]
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		// Unknown fields and wrong types, all of them; the rest of the
		// file is still checked.
		pr.list = append(pr.list, yamlProblems(err)...)
	}
	defaults := resolve(&pr, statestore.DefaultPolicy(), f.Defaults, "defaults")
	if defaults.HalfOpen == statestore.HalfOpenCanary {
		pr.add("defaults.half_open", "canary needs a canary: block, which only a breaker can have; set half_open: canary on those breakers")
	}
	limits := DefaultLimits()
	set(&limits.MaxBreakers, f.Limits.MaxBreakers)
	set(&limits.MaxBreakersPerAgent, f.Limits.MaxBreakersPerAgent)
	setDur(&limits.Retention, f.Limits.Retention)
	set(&limits.MetricsMaxBreakers, f.Limits.MetricsMaxBreakers)
	if err := limits.Validate(); err != nil {
		pr.addErr(err)
	}
	c := &Config{Defaults: defaults, Breakers: make(map[string]statestore.Policy, len(f.Breakers)), Canaries: map[string]probe.Spec{}, Auth: f.Auth, Limits: limits}
	// Breakers in the file's order, so their problems are too.
	order := mapKeys(mapValueNode(pr.root, "breakers"))
	for _, n := range slices.Sorted(maps.Keys(f.Breakers)) {
		if !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	c.root = pr.root
	for _, name := range order {
		b, ok := f.Breakers[name]
		if !ok {
			continue
		}
		field := "breakers." + name
		if !statestore.ValidName(name) {
			pr.add(field, "invalid breaker name: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
			continue
		}
		spec := b.PolicySpec
		if b.Canary != nil && spec.HalfOpen == nil {
			// A breaker with a canary is probed by it unless it says otherwise.
			mode := statestore.HalfOpenCanary
			spec.HalfOpen = &mode
		}
		p := resolve(&pr, defaults, spec, field)
		if b.Canary != nil {
			cs, err := canary(*b.Canary, p, field+".canary")
			if err != nil {
				pr.addErr(err)
			}
			c.Canaries[name] = cs
		} else if p.HalfOpen == statestore.HalfOpenCanary {
			pr.add(field+".half_open", "canary needs a canary: block for this breaker (or use traffic)")
		}
		c.Breakers[name] = p
	}
	c.root = pr.root
	if err := pr.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func mapValueNode(n *yaml.Node, key string) *yaml.Node {
	if kv := mapValue(n, key); kv != nil {
		return kv.value
	}
	return nil
}

func canary(cs CanarySpec, p statestore.Policy, field string) (probe.Spec, error) {
	s := probe.Spec{
		Kind: probe.Kind(cs.Kind), URL: cs.URL, Method: cs.Method, Headers: cs.Headers, HeaderEnv: cs.HeaderEnv,
		Body: cs.Body, ExpectStatus: cs.ExpectStatus, APIKeyEnv: cs.APIKeyEnv, Model: cs.Model,
		Prompt: cs.Prompt, MaxTokens: cs.MaxTokens,
	}
	if cs.Timeout != nil {
		s.Timeout = time.Duration(*cs.Timeout)
	}
	if err := s.Validate(); err != nil {
		var pe *probe.Error
		if errors.As(err, &pe) {
			return s, &Error{Field: field + "." + pe.Field, Reason: pe.Reason}
		}
		return s, &Error{Field: field, Reason: err.Error()}
	}
	s = s.WithDefaults()
	if s.Timeout >= p.ProbeTimeout {
		return s, &Error{Field: field + ".timeout", Reason: fmt.Sprintf("must be shorter than probe_timeout (%s), got %s", p.ProbeTimeout, s.Timeout)}
	}
	return s, nil
}

// resolve applies the file's fields to base and records every problem of
// the result.
func resolve(pr *problems, base statestore.Policy, s PolicySpec, field string) statestore.Policy {
	p := base
	set(&p.ConsecutiveFailures, s.ConsecutiveFailures)
	set(&p.FailureRate, s.FailureRate)
	set(&p.MinCalls, s.MinCalls)
	setDur(&p.Window, s.Window)
	setDur(&p.SlowCall, s.SlowCall)
	set(&p.SlowCallRate, s.SlowCallRate)
	setDur(&p.OpenTimeout, s.OpenTimeout)
	setDur(&p.MaxOpenTimeout, s.MaxOpenTimeout)
	set(&p.HonorRetryAfter, s.HonorRetryAfter)
	set(&p.HalfOpen, s.HalfOpen)
	setDur(&p.ProbeTimeout, s.ProbeTimeout)
	setDur(&p.HangAfter, s.HangAfter)
	setDur(&p.MaxRetryAfter, s.MaxRetryAfter)
	set(&p.MinAgents, s.MinAgents)
	setDur(&p.CanaryInterval, s.CanaryInterval)
	setDur(&p.CanaryMaxInterval, s.CanaryMaxInterval)
	setDur(&p.MisconfiguredOpen, s.MisconfiguredOpen)
	inherited := map[statestore.PolicyError]bool{}
	if field != "defaults" {
		// The defaults' own problems are reported once, under defaults.
		for _, pe := range base.Problems() {
			inherited[*pe] = true
		}
	}
	for _, pe := range p.Problems() {
		if !inherited[*pe] {
			pr.add(field+"."+pe.Field, pe.Reason)
		}
	}
	return p
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setDur(dst *time.Duration, v *Duration) {
	if v != nil {
		*dst = time.Duration(*v)
	}
}
