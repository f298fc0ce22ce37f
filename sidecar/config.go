package sidecar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/statestore"
)

// Kind names a provider's wire format.
type Kind string

const (
	KindOpenAI           Kind = "openai"
	KindOpenAICompatible Kind = "openai-compatible"
	KindAnthropic        Kind = "anthropic"
	KindOllama           Kind = "ollama"
)

// Timeouts bound one call to a provider. A first-byte or first-token
// timeout is never retried on the same provider: the request moves on
// down the chain.
type Timeouts struct {
	// Connect bounds the TCP and TLS handshake. Default 2s: a handshake
	// with a healthy API takes well under 300 ms.
	Connect time.Duration
	// FirstByte bounds the wait for the response headers. A non-streamed
	// answer's headers come with the whole answer, so this is also how
	// long a non-streamed generation may take. Default 30s.
	FirstByte time.Duration
	// FirstToken bounds, for a streamed request, the wait from sending it
	// to the first chunk that carries content (a token, a tool call or
	// the finish): a stream that starts and then sends nothing is a
	// hang. Default 10s.
	FirstToken time.Duration
	// Stall bounds the gap between two chunks of a stream once it has
	// begun. Default 10s: models send tokens every few tens of ms.
	Stall time.Duration
	// Total bounds the whole call, stream included. Default 120s.
	Total time.Duration
}

// Hedge starts the next provider in the chain when the chosen one has not
// sent its first byte (for a stream, its first token) after a while, and
// serves whichever answers first. Hedges are spent from the retry budget,
// so an outage never doubles the load on anyone.
type Hedge struct {
	// After is the fixed wait before hedging; 0 with Percentile set uses
	// the provider's recent first-byte times instead.
	After time.Duration
	// Percentile (e.g. 95) of the provider's last 256 first-byte times,
	// clamped to [Min, Max]; Min until 20 were seen (a sidecar that just
	// started hedges early rather than let a user wait on a hang: the
	// retry budget bounds what that costs).
	Percentile float64
	Min, Max   time.Duration
}

// wait is how long to wait for p before hedging.
func (h *Hedge) wait(p *Provider, stats *firstBytes) time.Duration {
	if h.Percentile <= 0 {
		return h.After
	}
	d, ok := stats.percentile(p.Name, h.Percentile)
	if !ok {
		return h.Min
	}
	return min(max(d, h.Min), h.Max)
}

// Provider is one upstream.
type Provider struct {
	Name string
	Kind Kind
	// BaseURL: default https://api.openai.com/v1 (openai),
	// https://api.anthropic.com (anthropic), http://127.0.0.1:11434
	// (ollama); required for openai-compatible.
	BaseURL string
	// APIKey is read from the environment variable the file names.
	APIKey    string
	APIKeyEnv string
	// Models maps a requested model to this provider's; "*" maps every
	// other one. A request for a model it cannot map skips the provider.
	Models map[string]string
	Timeouts
	// Breaker names the provider's cluster-wide breaker. Default: Name.
	Breaker string
	// Granularity: PerProvider (default), one breaker; or PerModel, one
	// per model sent to the provider, named ModelBreakerName(Breaker,
	// model), made on the model's first use.
	Granularity Granularity
	// MaxModelBreakers caps the per-model breakers; models beyond it share
	// the provider's breaker (Breaker). Default 64.
	MaxModelBreakers int
	// MaxTokens is sent to Anthropic when a request sets none. Default 4096.
	MaxTokens int
	// NextOnConfigError moves on to the next provider after a 401, 403 or
	// 404 (a configuration error here, not an outage). Default true.
	NextOnConfigError bool
	// Capabilities is what the provider declares it can serve;
	// ModelCapabilities, per model (as sent to the provider), takes
	// precedence field by field.
	Capabilities      Capabilities
	ModelCapabilities map[string]Capabilities
}

// configuredModels are the provider's models the file names: the
// targets of Models, and the names it passes through as requested.
func (p *Provider) configuredModels() []string {
	set := map[string]bool{}
	for req, m := range p.Models {
		switch {
		case m != "" && m != "*":
			set[m] = true
		case req != "*":
			set[req] = true
		}
	}
	return sortedKeys(set)
}

// Model maps a requested model to this provider's, if it can serve it.
func (p *Provider) Model(requested string) (string, bool) {
	if m, ok := p.Models[requested]; ok {
		return m, true
	}
	if m, ok := p.Models["*"]; ok {
		if m == "" || m == "*" {
			return requested, true
		}
		return m, true
	}
	return "", false
}

// Route is a fallback chain for the models it serves, on the inbound
// APIs it serves.
type Route struct {
	Name string
	// APIs this route serves. Default chat and messages.
	APIs []API
	// Models this route serves; "*" serves any.
	Models []string
	// Chain is tried in order.
	Chain []*Provider
	// MessagesChain is the order POST /v1/messages tries: default, the
	// chain with its anthropic providers first (an app on Anthropic's SDK
	// is served natively while Anthropic is up), the others after them in
	// the chain's order.
	MessagesChain []*Provider
	// ContextWindowFallbacks are tried, in order, after a provider answers
	// a 400 for the context length (which counts against no breaker); the
	// rest of the chain is not. None: that 400 goes to the caller.
	ContextWindowFallbacks []*Provider
	// Cache answers repeated non-streamed requests from Redis.
	Cache    bool
	CacheTTL time.Duration
	// Hedge, when set, races the next provider against a slow first one.
	Hedge *Hedge
	// scan: a provider here declares capabilities, so requests are read
	// for what they need.
	scan bool
}

func (r *Route) serves(api API, model string) bool {
	return slices.Contains(r.APIs, api) && (slices.Contains(r.Models, model) || slices.Contains(r.Models, "*"))
}

// chainFor is the order the route tries its providers for an API.
func (r *Route) chainFor(api API) []*Provider {
	if api == APIMessages {
		return r.MessagesChain
	}
	return r.Chain
}

// Retry shapes retries of transient errors (connection errors, timeouts).
type Retry struct {
	// Attempts per provider, the first included. Default 3.
	Attempts int
	// Base and Max bound the exponential backoff (with full jitter).
	// Defaults 100ms and 2s.
	Base, Max time.Duration
	// Budget caps retries at this share of the requests of the last 10
	// seconds, plus MinPerSecond. Defaults 0.2 and 1.
	Budget       float64
	MinPerSecond float64
}

// Config is a loaded sidecar config file.
type Config struct {
	Providers map[string]*Provider
	Routes    []*Route
	Retry     Retry
	// UserHeader names the request header that identifies the caller's
	// user, part of the cache key. Default X-Fusebox-User.
	UserHeader string
}

// RouteFor returns the first route that serves model on Chat Completions.
func (c *Config) RouteFor(model string) (*Route, bool) { return c.RouteForAPI(APIChat, model) }

// RouteForAPI returns the first route that serves model on api.
func (c *Config) RouteForAPI(api API, model string) (*Route, bool) {
	for _, r := range c.Routes {
		if r.serves(api, model) {
			return r, true
		}
	}
	return nil, false
}

type fileTimeouts struct {
	Connect    *config.Duration `yaml:"connect"`
	FirstByte  *config.Duration `yaml:"first_byte"`
	FirstToken *config.Duration `yaml:"first_token"`
	Stall      *config.Duration `yaml:"stall"`
	Total      *config.Duration `yaml:"total"`
}

type fileProvider struct {
	Kind              Kind                        `yaml:"kind"`
	BaseURL           string                      `yaml:"base_url"`
	APIKeyEnv         string                      `yaml:"api_key_env"`
	Models            map[string]string           `yaml:"models"`
	Timeouts          fileTimeouts                `yaml:"timeouts"`
	Breaker           fileBreaker                 `yaml:"breaker"`
	MaxTokens         int                         `yaml:"max_tokens"`
	NextOnConfigError *bool                       `yaml:"next_on_config_error"`
	Capabilities      fileCapabilities            `yaml:"capabilities"`
	ModelCapabilities map[string]fileCapabilities `yaml:"model_capabilities"`
}

// fileBreaker is `breaker:`: a name ("openai-prod"), a granularity
// ("per_model", "per_provider"), or both and the per-model cap:
// {name: openai-prod, granularity: per_model, max_models: 64}.
type fileBreaker struct {
	Name        string      `yaml:"name"`
	Granularity Granularity `yaml:"granularity"`
	MaxModels   *int        `yaml:"max_models"`
}

func (b *fileBreaker) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		switch g := Granularity(s); g {
		case PerModel, PerProvider:
			b.Granularity = g
		default:
			b.Name = s
		}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "name", "granularity", "max_models":
			default:
				return fmt.Errorf("line %d: field %s not found in breaker: want name, granularity or max_models", n.Content[i].Line, k)
			}
		}
		type plain fileBreaker
		return n.Decode((*plain)(b))
	}
	return fmt.Errorf("line %d: breaker: want a name, per_model, per_provider, or {name, granularity, max_models}", n.Line)
}

type fileRoute struct {
	Name                   string   `yaml:"name"`
	APIs                   []API    `yaml:"apis"`
	Models                 []string `yaml:"models"`
	Chain                  []string `yaml:"chain"`
	MessagesChain          []string `yaml:"messages_chain"`
	ContextWindowFallbacks []string `yaml:"context_window_fallbacks"`
	Cache                  struct {
		Enabled bool             `yaml:"enabled"`
		TTL     *config.Duration `yaml:"ttl"`
	} `yaml:"cache"`
	Hedge *struct {
		After string           `yaml:"after"`
		Min   *config.Duration `yaml:"min"`
		Max   *config.Duration `yaml:"max"`
	} `yaml:"hedge"`
}

type fileConfig struct {
	Providers map[string]fileProvider `yaml:"providers"`
	Routes    []fileRoute             `yaml:"routes"`
	Retry     struct {
		Attempts     *int             `yaml:"attempts"`
		Base         *config.Duration `yaml:"base"`
		Max          *config.Duration `yaml:"max"`
		Budget       *float64         `yaml:"budget"`
		MinPerSecond *float64         `yaml:"min_per_second"`
	} `yaml:"retry"`
	UserHeader string `yaml:"user_header"`
}

// ConfigError names the field and the reason.
type ConfigError struct {
	Path, Field, Reason string
	Line                int // in the file; 0 when unknown
}

func (e *ConfigError) Error() string {
	where := "sidecar config"
	if e.Path != "" {
		where += " " + e.Path
	}
	return where + ": " + e.located()
}

func (e *ConfigError) located() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ConfigErrors is every problem of a config file, in the file's order: a
// file with several mistakes names them all at once.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	where := "sidecar config"
	if len(es) > 0 && es[0].Path != "" {
		where += " " + es[0].Path
	}
	lines := []string{fmt.Sprintf("%s: %d problems:", where, len(es))}
	for _, e := range es {
		lines = append(lines, "  "+e.located())
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives each problem to errors.Is and errors.As.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// LoadConfig reads a config file; getenv gives API keys.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Path: path, Reason: err.Error()}
	}
	c, err := ParseConfig(data, getenv)
	var es ConfigErrors
	if errors.As(err, &es) {
		for _, e := range es {
			e.Path = path
		}
	}
	return c, err
}

// configProblems collects a file's problems, located.
type configProblems struct {
	at   *config.Locator
	list ConfigErrors
}

func (p *configProblems) add(err error) {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		ce = &ConfigError{Reason: err.Error()}
	}
	if ce.Line == 0 {
		ce.Line = p.at.Line(ce.Field)
	}
	p.list = append(p.list, ce)
}

func (p *configProblems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *ConfigError) int { return a.Line - b.Line })
	return p.list
}

// ParseConfig reads and validates a config file's contents. Every
// problem is reported at once, in the file's order (a ConfigErrors).
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	pr := &configProblems{at: config.NewLocator(data)}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		// Every unknown field and wrong type; the rest is still checked.
		for _, d := range config.DecodeProblems(err) {
			pr.list = append(pr.list, &ConfigError{Reason: d.Reason, Line: d.Line})
		}
	}
	c := &Config{Providers: map[string]*Provider{}, UserHeader: "X-Fusebox-User"}
	if f.UserHeader != "" {
		c.UserHeader = f.UserHeader
	}
	if len(f.Providers) == 0 {
		pr.add(&ConfigError{Field: "providers", Reason: "name at least one provider"})
	}
	order := pr.at.Keys("providers")
	for _, n := range slices.Sorted(maps.Keys(f.Providers)) {
		if !slices.Contains(order, n) {
			order = append(order, n)
		}
	}
	for _, name := range order {
		fp, ok := f.Providers[name]
		if !ok {
			continue
		}
		p, err := parseProvider(name, fp, getenv)
		if err != nil {
			pr.add(err)
			// A stand-in, so routes naming it are checked for their own
			// problems only; the config is refused anyway.
			p = &Provider{Name: name, Kind: fp.Kind, Breaker: name, Models: map[string]string{"*": ""}}
		}
		c.Providers[name] = p
	}
	if len(f.Routes) == 0 {
		pr.add(&ConfigError{Field: "routes", Reason: "name at least one route"})
	}
	seen := map[string]bool{}
	for i, fr := range f.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if fr.Name == "" {
			pr.add(&ConfigError{Field: field + ".name", Reason: "required"})
			continue
		}
		if seen[fr.Name] {
			pr.add(&ConfigError{Field: field + ".name", Reason: fmt.Sprintf("%q appears twice", fr.Name)})
			continue
		}
		seen[fr.Name] = true
		r := &Route{Name: fr.Name, Models: fr.Models, Cache: fr.Cache.Enabled, CacheTTL: 300 * time.Second}
		if len(r.Models) == 0 {
			r.Models = []string{"*"}
		}
		if fr.Cache.TTL != nil {
			r.CacheTTL = time.Duration(*fr.Cache.TTL)
			if r.CacheTTL < time.Second || r.CacheTTL > 7*24*time.Hour {
				pr.add(&ConfigError{Field: field + ".cache.ttl", Reason: "want 1s to 168h"})
			}
		}
		if fr.Hedge != nil {
			h, err := parseHedge(field+".hedge", fr.Hedge.After, fr.Hedge.Min, fr.Hedge.Max)
			if err != nil {
				pr.add(err)
			}
			r.Hedge = h
		}
		if err := parseRouteChains(c, r, fr, field); err != nil {
			pr.add(err)
			continue
		}
		c.Routes = append(c.Routes, r)
	}
	c.Retry = Retry{Attempts: 3, Base: 100 * time.Millisecond, Max: 2 * time.Second, Budget: 0.2, MinPerSecond: 1}
	fr := f.Retry
	if fr.Attempts != nil {
		c.Retry.Attempts = *fr.Attempts
	}
	if fr.Base != nil {
		c.Retry.Base = time.Duration(*fr.Base)
	}
	if fr.Max != nil {
		c.Retry.Max = time.Duration(*fr.Max)
	}
	if fr.Budget != nil {
		c.Retry.Budget = *fr.Budget
	}
	if fr.MinPerSecond != nil {
		c.Retry.MinPerSecond = *fr.MinPerSecond
	}
	if c.Retry.Attempts < 1 || c.Retry.Attempts > 10 {
		pr.add(&ConfigError{Field: "retry.attempts", Reason: "want 1 (no retries) to 10"})
	}
	if c.Retry.Base <= 0 || c.Retry.Max < c.Retry.Base {
		pr.add(&ConfigError{Field: "retry.max", Reason: "want base > 0 and max >= base"})
	}
	if c.Retry.Budget < 0 || c.Retry.Budget > 1 {
		pr.add(&ConfigError{Field: "retry.budget", Reason: "want a share in [0, 1]"})
	}
	if c.Retry.MinPerSecond < 0 {
		pr.add(&ConfigError{Field: "retry.min_per_second", Reason: "must not be negative"})
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseProvider(name string, fp fileProvider, getenv func(string) string) (*Provider, error) {
	field := "providers." + name
	if !statestore.ValidName(name) {
		return nil, &ConfigError{Field: field, Reason: "invalid name: use 1-128 of A-Z a-z 0-9 . _ -"}
	}
	p := &Provider{Name: name, Kind: fp.Kind, BaseURL: strings.TrimRight(fp.BaseURL, "/"), APIKeyEnv: fp.APIKeyEnv,
		Models: fp.Models, Breaker: fp.Breaker.Name, Granularity: PerProvider, MaxModelBreakers: 64, MaxTokens: fp.MaxTokens, NextOnConfigError: true,
		Timeouts: Timeouts{Connect: 2 * time.Second, FirstByte: 30 * time.Second, FirstToken: 10 * time.Second, Stall: 10 * time.Second, Total: 120 * time.Second}}
	if fp.NextOnConfigError != nil {
		p.NextOnConfigError = *fp.NextOnConfigError
	}
	switch p.Kind {
	case KindOpenAI:
		if p.BaseURL == "" {
			p.BaseURL = "https://api.openai.com/v1"
		}
		// The real API refuses every call without a key; a compatible
		// server (or the fake provider) may need none.
		if p.APIKeyEnv == "" && strings.Contains(p.BaseURL, "api.openai.com") {
			return nil, &ConfigError{Field: field + ".api_key_env", Reason: "required for openai at api.openai.com"}
		}
	case KindAnthropic:
		if p.BaseURL == "" {
			p.BaseURL = "https://api.anthropic.com"
		}
		if p.APIKeyEnv == "" && strings.Contains(p.BaseURL, "api.anthropic.com") {
			return nil, &ConfigError{Field: field + ".api_key_env", Reason: "required for anthropic at api.anthropic.com"}
		}
	case KindOllama:
		if p.BaseURL == "" {
			p.BaseURL = "http://127.0.0.1:11434"
		}
	case KindOpenAICompatible:
		if p.BaseURL == "" {
			return nil, &ConfigError{Field: field + ".base_url", Reason: "required for openai-compatible"}
		}
	case "":
		return nil, &ConfigError{Field: field + ".kind", Reason: "required: openai, anthropic, ollama or openai-compatible"}
	default:
		return nil, &ConfigError{Field: field + ".kind", Reason: fmt.Sprintf("%q: want openai, anthropic, ollama or openai-compatible", p.Kind)}
	}
	if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{Field: field + ".base_url", Reason: fmt.Sprintf("%q: want an http(s) URL", p.BaseURL)}
	}
	if p.APIKeyEnv != "" {
		p.APIKey = getenv(p.APIKeyEnv)
		if p.APIKey == "" {
			return nil, &ConfigError{Field: field + ".api_key_env", Reason: fmt.Sprintf("environment variable %s is not set", p.APIKeyEnv)}
		}
	}
	if len(p.Models) == 0 {
		p.Models = map[string]string{"*": ""}
	}
	if p.Breaker == "" {
		p.Breaker = name
	}
	if !statestore.ValidName(p.Breaker) {
		return nil, &ConfigError{Field: field + ".breaker", Reason: fmt.Sprintf("%q: invalid breaker name: use 1-128 of A-Z a-z 0-9 . _ -", p.Breaker)}
	}
	if err := parseGranularity(p, fp.Breaker, field+".breaker"); err != nil {
		return nil, err
	}
	var err error
	if p.Capabilities, err = fp.Capabilities.parse(field + ".capabilities"); err != nil {
		return nil, err
	}
	if p.ModelCapabilities, err = parseModelCapabilities(field+".model_capabilities", fp.ModelCapabilities); err != nil {
		return nil, err
	}
	if p.MaxTokens == 0 {
		p.MaxTokens = 4096
	}
	if p.MaxTokens < 0 {
		return nil, &ConfigError{Field: field + ".max_tokens", Reason: "must be positive"}
	}
	t := fp.Timeouts
	for _, d := range []struct {
		name string
		v    *config.Duration
		dst  *time.Duration
	}{{"connect", t.Connect, &p.Connect}, {"first_byte", t.FirstByte, &p.FirstByte}, {"first_token", t.FirstToken, &p.FirstToken},
		{"stall", t.Stall, &p.Stall}, {"total", t.Total, &p.Total}} {
		if d.v != nil {
			if *d.v <= 0 {
				return nil, &ConfigError{Field: field + ".timeouts." + d.name, Reason: "must be positive"}
			}
			*d.dst = time.Duration(*d.v)
		}
	}
	// A default longer than a total the file set yields to it.
	for _, d := range []struct {
		v   *config.Duration
		dst *time.Duration
	}{{t.Connect, &p.Connect}, {t.FirstByte, &p.FirstByte}, {t.FirstToken, &p.FirstToken}, {t.Stall, &p.Stall}} {
		if d.v == nil {
			*d.dst = min(*d.dst, p.Total)
		}
	}
	if p.FirstByte > p.Total || p.Connect > p.Total || p.FirstToken > p.Total || p.Stall > p.Total {
		return nil, &ConfigError{Field: field + ".timeouts.total", Reason: "must be at least connect, first_byte, first_token and stall"}
	}
	return p, nil
}

// parseHedge reads a route's hedge: after is a duration ("2s") or a
// percentile of recent first-byte times ("p95"), which then needs max.
func parseHedge(field, after string, lo, hi *config.Duration) (*Hedge, error) {
	h := &Hedge{}
	if lo != nil {
		h.Min = time.Duration(*lo)
	}
	if hi != nil {
		h.Max = time.Duration(*hi)
	}
	switch {
	case after == "":
		return nil, &ConfigError{Field: field + ".after", Reason: `required: a duration ("2s") or a percentile of recent first-byte times ("p95")`}
	case strings.HasPrefix(after, "p"):
		pct, err := strconv.ParseFloat(after[1:], 64)
		if err != nil || pct <= 0 || pct >= 100 {
			return nil, &ConfigError{Field: field + ".after", Reason: fmt.Sprintf("%q: want a percentile p1 to p99.9", after)}
		}
		h.Percentile = pct
		if h.Min <= 0 {
			return nil, &ConfigError{Field: field + ".min", Reason: "required with a percentile: the shortest wait, and the wait until 20 first-byte times were seen"}
		}
		if h.Max < h.Min {
			return nil, &ConfigError{Field: field + ".max", Reason: "required with a percentile: the longest wait, at least min"}
		}
	default:
		d, err := time.ParseDuration(after)
		if err != nil || d <= 0 {
			return nil, &ConfigError{Field: field + ".after", Reason: fmt.Sprintf("%q: want a positive duration with a unit, or a percentile such as p95", after)}
		}
		h.After = d
	}
	return h, nil
}

// parseGranularity reads the breaker's granularity and, per model, checks
// that every model the file names gets a breaker of its own.
func parseGranularity(p *Provider, fb fileBreaker, field string) error {
	switch fb.Granularity {
	case "", PerProvider:
		if fb.MaxModels != nil {
			return &ConfigError{Field: field + ".max_models", Reason: "only with granularity: per_model"}
		}
		return nil
	case PerModel:
	default:
		return &ConfigError{Field: field + ".granularity", Reason: fmt.Sprintf("%q: want per_provider or per_model", fb.Granularity)}
	}
	p.Granularity = PerModel
	if fb.MaxModels != nil {
		if *fb.MaxModels < 1 || *fb.MaxModels > 10000 {
			return &ConfigError{Field: field + ".max_models", Reason: "want 1 to 10000"}
		}
		p.MaxModelBreakers = *fb.MaxModels
	}
	if len(p.Breaker) > maxBreakerName-2 {
		return &ConfigError{Field: field, Reason: fmt.Sprintf("%q: a per-model breaker is named <breaker>.<model>, at most %d characters: shorten the breaker's name to %d", p.Breaker, maxBreakerName, maxBreakerName-2)}
	}
	seen := map[string]string{}
	for _, m := range p.configuredModels() {
		n := ModelBreakerName(p.Breaker, m)
		if other, ok := seen[n]; ok {
			return &ConfigError{Field: "providers." + p.Name + ".models", Reason: fmt.Sprintf("models %q and %q would share the breaker %q (characters outside A-Z a-z 0-9 . _ - become _): rename one, or use breaker: per_provider", other, m, n)}
		}
		seen[n] = m
	}
	return nil
}

// parseRouteChains reads a route's APIs and chains, and checks that every
// provider in them can serve every API the route serves.
func parseRouteChains(c *Config, r *Route, fr fileRoute, field string) error {
	r.APIs = slices.Clone(defaultAPIs)
	if fr.APIs != nil {
		if len(fr.APIs) == 0 {
			return &ConfigError{Field: field + ".apis", Reason: "name at least one: chat, messages, embeddings, responses"}
		}
		r.APIs = nil
		for j, a := range fr.APIs {
			if !a.valid() {
				return &ConfigError{Field: fmt.Sprintf("%s.apis[%d]", field, j), Reason: fmt.Sprintf("%q: want chat, messages, embeddings or responses", a)}
			}
			if slices.Contains(r.APIs, a) {
				return &ConfigError{Field: fmt.Sprintf("%s.apis[%d]", field, j), Reason: fmt.Sprintf("%q appears twice", a)}
			}
			r.APIs = append(r.APIs, a)
		}
	}
	list := func(name string, names []string) ([]*Provider, error) {
		var out []*Provider
		for j, pn := range names {
			f := fmt.Sprintf("%s.%s[%d]", field, name, j)
			p, ok := c.Providers[pn]
			if !ok {
				return nil, &ConfigError{Field: f, Reason: fmt.Sprintf("no provider %q", pn)}
			}
			if slices.Contains(out, p) {
				return nil, &ConfigError{Field: f, Reason: fmt.Sprintf("%q appears twice", pn)}
			}
			for _, a := range r.APIs {
				if err := p.Kind.serves(a); err != nil {
					return nil, &ConfigError{Field: f, Reason: fmt.Sprintf("%s (%s) cannot serve %s: %v", pn, p.Kind, a, err)}
				}
			}
			out = append(out, p)
		}
		return out, nil
	}
	if len(fr.Chain) == 0 {
		return &ConfigError{Field: field + ".chain", Reason: "name at least one provider"}
	}
	var err error
	if r.Chain, err = list("chain", fr.Chain); err != nil {
		return err
	}
	if fr.MessagesChain != nil {
		if !slices.Contains(r.APIs, APIMessages) {
			return &ConfigError{Field: field + ".messages_chain", Reason: "the route does not serve messages (apis)"}
		}
		if r.MessagesChain, err = list("messages_chain", fr.MessagesChain); err != nil {
			return err
		}
		if len(r.MessagesChain) == 0 {
			return &ConfigError{Field: field + ".messages_chain", Reason: "name at least one provider, or leave it out"}
		}
	} else {
		for _, p := range r.Chain {
			if p.Kind == KindAnthropic {
				r.MessagesChain = append(r.MessagesChain, p)
			}
		}
		for _, p := range r.Chain {
			if p.Kind != KindAnthropic {
				r.MessagesChain = append(r.MessagesChain, p)
			}
		}
	}
	if r.ContextWindowFallbacks, err = list("context_window_fallbacks", fr.ContextWindowFallbacks); err != nil {
		return err
	}
	for _, ps := range [][]*Provider{r.Chain, r.MessagesChain, r.ContextWindowFallbacks} {
		for _, p := range ps {
			r.scan = r.scan || p.declaresCapabilities()
		}
	}
	return nil
}
