package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/fusebox-io/fusebox/config"
)

// parseEnvTokens reads FUSEBOX_TOKENS: "name:role:secret" entries,
// comma-separated. Errors never repeat a secret.
func parseEnvTokens(v string) ([]config.Token, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []config.Token
	for i, entry := range strings.Split(v, ",") {
		parts := strings.SplitN(strings.TrimSpace(entry), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("FUSEBOX_TOKENS entry %d: want name:role:secret", i+1)
		}
		t := config.Token{Name: parts[0], Role: config.Role(parts[1]), Secret: parts[2]}
		if err := config.ValidateToken(t); err != nil {
			return nil, fmt.Errorf("FUSEBOX_TOKENS entry %d: %v", i+1, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// generateDevTokens makes one random token per role for --dev.
func generateDevTokens() ([]config.Token, error) {
	var out []config.Token
	for _, r := range []config.Role{config.RoleAdmin, config.RoleAgent, config.RoleRead} {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		out = append(out, config.Token{Name: "dev-" + string(r), Role: r, Secret: "fbx_" + base64.RawURLEncoding.EncodeToString(b)})
	}
	return out, nil
}
