package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Kind names a canary kind.
type Kind string

const (
	KindHTTP      Kind = "http"
	KindOpenAI    Kind = "openai"
	KindAnthropic Kind = "anthropic"
	KindOllama    Kind = "ollama"
)

// DefaultPrompt is what the LLM canaries ask.
const DefaultPrompt = "Respond with OK"

// Spec configures a canary. A zero field means the default on its comment.
type Spec struct {
	Kind Kind
	// URL is the target for http, and the base URL otherwise. Defaults:
	// openai https://api.openai.com/v1, anthropic https://api.anthropic.com,
	// ollama http://127.0.0.1:11434.
	URL string
	// Method (http): default GET.
	Method string
	// Headers (http) are sent as given.
	Headers map[string]string
	// HeaderEnv (http) maps a header to the environment variable holding
	// its value, for secrets.
	HeaderEnv map[string]string
	// Body (http) is sent as given.
	Body string
	// ExpectStatus (http) lists healthy statuses; default any 2xx.
	ExpectStatus []int
	// APIKeyEnv names the variable holding the API key: required for
	// anthropic against api.anthropic.com (the default url), optional
	// otherwise (an OpenAI- or Anthropic-compatible server may need none),
	// unused for http and ollama.
	APIKeyEnv string
	// Model is required for openai and anthropic. For ollama, a model
	// makes the canary a tiny /api/chat; without one it is GET /api/tags.
	Model string
	// Prompt: default DefaultPrompt.
	Prompt string
	// MaxTokens caps the answer; default 5.
	MaxTokens int
	// Timeout bounds one probe; default 10s.
	Timeout time.Duration
}

// Result is what one probe found.
type Result struct {
	OK bool
	// Reason says why the target is unhealthy, e.g. "HTTP 503:
	// overloaded_error: Overloaded"; empty when OK.
	Reason string
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// RetryAfter is how long the failed response asked callers to stay
	// away: its Retry-After (or retry-after-ms), or the reset of the
	// rate limits it says are exhausted, the longer (provider.RetryIn);
	// 0 when none.
	RetryAfter time.Duration
	Took       time.Duration
}

// Canary probes one target. A coordinator may run the canaries of several
// breakers at once, and one canary again in the next window while a late
// probe of the last one still runs: an implementation must be safe for
// concurrent use. The canaries of this package are (they hold only their
// settings and an *http.Client).
type Canary interface {
	// Probe runs one probe within the canary's timeout (and ctx).
	Probe(ctx context.Context) Result
	// Timeout is the longest one probe may take.
	Timeout() time.Duration
}

// Error says what is wrong with a spec.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

// Validate checks a spec's structure; New also checks the environment.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindHTTP:
		if s.URL == "" {
			return &Error{"url", "required for an http canary"}
		}
		for _, st := range s.ExpectStatus {
			if st < 100 || st > 599 {
				return &Error{"expect_status", fmt.Sprintf("%d is not an HTTP status", st)}
			}
		}
	case KindOpenAI, KindAnthropic:
		if s.Model == "" {
			return &Error{"model", fmt.Sprintf("required for an %s canary", s.Kind)}
		}
		if s.Kind == KindAnthropic && s.APIKeyEnv == "" && (s.URL == "" || strings.Contains(s.URL, "api.anthropic.com")) {
			// The real API refuses every call without a key; a
			// compatible server (or the fake provider) may need none.
			return &Error{"api_key_env", "required for an anthropic canary against api.anthropic.com"}
		}
	case KindOllama:
	case "":
		return &Error{"kind", "required: http, openai, anthropic or ollama"}
	default:
		return &Error{"kind", fmt.Sprintf("%q: want http, openai, anthropic or ollama", s.Kind)}
	}
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{"url", fmt.Sprintf("%q: want an http(s) URL", s.URL)}
		}
	}
	if s.Timeout < 0 || s.MaxTokens < 0 {
		return &Error{"timeout", "must not be negative"}
	}
	return nil
}

// WithDefaults fills in every zero field with its default.
func (s Spec) WithDefaults() Spec {
	if s.Timeout == 0 {
		s.Timeout = 10 * time.Second
	}
	if s.MaxTokens == 0 {
		s.MaxTokens = 5
	}
	if s.Prompt == "" {
		s.Prompt = DefaultPrompt
	}
	if s.Method == "" {
		s.Method = http.MethodGet
	}
	if s.URL == "" {
		switch s.Kind {
		case KindOpenAI:
			s.URL = "https://api.openai.com/v1"
		case KindAnthropic:
			s.URL = "https://api.anthropic.com"
		case KindOllama:
			s.URL = "http://127.0.0.1:11434"
		}
	}
	s.URL = strings.TrimRight(s.URL, "/")
	return s
}

// ErrMissingEnv is returned by New when a variable named in a spec is
// unset or empty.
var ErrMissingEnv = errors.New("probe: environment variable not set")

// New builds a canary, reading its secrets from getenv (nil means
// os.Getenv). client nil means a pooled default client.
func New(s Spec, getenv func(string) string, client *http.Client) (Canary, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	s = s.WithDefaults()
	if client == nil {
		client = defaultClient()
	}
	env := func(name string) (string, error) {
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("%w: %s", ErrMissingEnv, name)
		}
		return v, nil
	}
	var key string
	if s.APIKeyEnv != "" && s.Kind != KindHTTP && s.Kind != KindOllama {
		var err error
		if key, err = env(s.APIKeyEnv); err != nil {
			return nil, err
		}
	}
	switch s.Kind {
	case KindHTTP:
		headers := map[string]string{}
		for k, v := range s.Headers {
			headers[k] = v
		}
		for h, name := range s.HeaderEnv {
			v, err := env(name)
			if err != nil {
				return nil, err
			}
			headers[h] = v
		}
		return &httpCanary{spec: s, headers: headers, client: client}, nil
	case KindOpenAI:
		return &openAICanary{spec: s, key: key, client: client}, nil
	case KindAnthropic:
		return &anthropicCanary{spec: s, key: key, client: client}, nil
	default:
		return &ollamaCanary{spec: s, client: client}, nil
	}
}

// HeaderCanary is sent with every canary request.
const HeaderCanary = "X-Fusebox-Canary"

func defaultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the probe's context
	}}
}

// NewAll builds the canary of every breaker in specs; an error names the
// breaker.
func NewAll(specs map[string]Spec, getenv func(string) string, client *http.Client) (map[string]Canary, error) {
	out := make(map[string]Canary, len(specs))
	for name, s := range specs {
		c, err := New(s, getenv, client)
		if err != nil {
			return nil, fmt.Errorf("breakers.%s.canary: %w", name, err)
		}
		out[name] = c
	}
	return out, nil
}
