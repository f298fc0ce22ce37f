package config

import (
	"fmt"
	"regexp"
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
	seen := map[string]bool{}
	var out []Token
	for i, ts := range c.Auth.Tokens {
		field := fmt.Sprintf("auth.tokens[%d]", i)
		t := Token{Name: ts.Name, Role: ts.Role, Secret: ts.Token}
		switch {
		case ts.Token != "" && ts.TokenEnv != "":
			return nil, &Error{Field: field, Reason: "set token or token_env, not both"}
		case ts.TokenEnv != "":
			t.Secret = getenv(ts.TokenEnv)
			if t.Secret == "" {
				return nil, &Error{Field: field + ".token_env", Reason: fmt.Sprintf("environment variable %s is not set", ts.TokenEnv)}
			}
		case ts.Token == "":
			return nil, &Error{Field: field, Reason: "token or token_env is required"}
		}
		if err := ValidateToken(t); err != nil {
			return nil, &Error{Field: field, Reason: err.Error()}
		}
		if seen[t.Name] {
			return nil, &Error{Field: field + ".name", Reason: fmt.Sprintf("%q appears twice", t.Name)}
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	return out, nil
}

// MetricsArePublic reports whether /metrics is served without a token.
func (c *Config) MetricsArePublic() bool {
	return c.Auth.MetricsPublic == nil || *c.Auth.MetricsPublic
}
