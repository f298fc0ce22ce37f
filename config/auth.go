package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// Role says what a token may do.
type Role string

const (
	// RoleRead may read breakers, events and metrics.
	RoleRead Role = "read"
	// RoleAgent may read and send reports.
	RoleAgent Role = "agent"
	// RoleAdmin may read and override breakers.
	RoleAdmin Role = "admin"
)

// MinTokenLength is the shortest secret accepted.
const MinTokenLength = 16

// TokenSpec is one API token as written in the file: the secret itself
// (token:) or, better, the environment variable that holds it
// (token_env:).
type TokenSpec struct {
	Name     string `yaml:"name"`
	Role     Role   `yaml:"role"`
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"token_env"`
}

// Auth is the file's auth: section.
type Auth struct {
	Tokens []TokenSpec `yaml:"tokens"`
	// MetricsPublic serves /metrics without a token. Default true.
	MetricsPublic *bool `yaml:"metrics_public"`
}

// Token is a resolved API token.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

var validTokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidateToken checks a resolved token.
func ValidateToken(t Token) error {
	if !validTokenName.MatchString(t.Name) {
		return fmt.Errorf("name %q: want 1-64 of A-Z a-z 0-9 . _ @ -", t.Name)
	}
	switch t.Role {
	case RoleRead, RoleAgent, RoleAdmin:
	default:
		return fmt.Errorf("token %s: role %q: want read, agent or admin", t.Name, t.Role)
	}
	if len(t.Secret) < MinTokenLength {
		return fmt.Errorf("token %s: secret shorter than %d characters", t.Name, MinTokenLength)
	}
	return nil
}

// ResolveTokens reads each token's secret (from getenv for token_env) and
// validates it. Names must be unique.
func (c *Config) ResolveTokens(getenv func(string) string) ([]Token, error) {
	pr := c.problems()
	seen := map[string]bool{}
	var out []Token
	for i, ts := range c.Auth.Tokens {
		field := fmt.Sprintf("auth.tokens[%d]", i)
		t := Token{Name: ts.Name, Role: ts.Role, Secret: ts.Token}
		switch {
		case ts.Token != "" && ts.TokenEnv != "":
			pr.add(field, "set token or token_env, not both")
			continue
		case ts.TokenEnv != "":
			t.Secret = getenv(ts.TokenEnv)
			if t.Secret == "" {
				pr.add(field+".token_env", fmt.Sprintf("environment variable %s is not set", ts.TokenEnv))
				continue
			}
		case ts.Token == "":
			pr.add(field, "token or token_env is required")
			continue
		}
		if err := ValidateToken(t); err != nil {
			pr.add(field, err.Error())
			continue
		}
		if seen[t.Name] {
			pr.add(field+".name", fmt.Sprintf("%q appears twice", t.Name))
			continue
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckEnv reports, all at once and in the file's order, every
// environment variable the file's canaries and tokens name that is not
// set: a coordinator refuses to start naming each.
func (c *Config) CheckEnv(getenv func(string) string) error {
	pr := c.problems()
	for _, name := range c.breakerOrder() {
		cs, ok := c.Canaries[name]
		if !ok {
			continue
		}
		field := "breakers." + name + ".canary"
		if cs.APIKeyEnv != "" && getenv(cs.APIKeyEnv) == "" {
			pr.add(field+".api_key_env", fmt.Sprintf("environment variable %s is not set", cs.APIKeyEnv))
		}
		for _, h := range slices.Sorted(maps.Keys(cs.HeaderEnv)) {
			if v := cs.HeaderEnv[h]; getenv(v) == "" {
				pr.add(field+".header_env."+h, fmt.Sprintf("environment variable %s is not set", v))
			}
		}
	}
	for i, ts := range c.Auth.Tokens {
		if ts.TokenEnv != "" && ts.Token == "" && getenv(ts.TokenEnv) == "" {
			pr.add(fmt.Sprintf("auth.tokens[%d].token_env", i), fmt.Sprintf("environment variable %s is not set", ts.TokenEnv))
		}
	}
	return pr.err()
}

// MetricsArePublic reports whether /metrics is served without a token.
func (c *Config) MetricsArePublic() bool {
	return c.Auth.MetricsPublic == nil || *c.Auth.MetricsPublic
}
