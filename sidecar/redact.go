package sidecar

import (
	"regexp"
	"strings"
)

// redactor removes secrets from what the sidecar passes on or logs: every
// configured API key, and anything shaped like one (a bearer token, an
// sk-… key), since a provider's error may echo a key the sidecar did not
// send.
type redactor struct {
	keys []string
}

// shapedLikeAKey matches bearer tokens and the usual API key shapes.
var shapedLikeAKey = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}|\bsk-ant-[A-Za-z0-9_-]{8,}`)

const redacted = "[redacted]"

func newRedactor(c *Config) *redactor {
	r := &redactor{}
	for _, p := range c.Providers {
		if len(p.APIKey) >= 4 {
			r.keys = append(r.keys, p.APIKey)
		}
	}
	return r
}

func (r *redactor) string(s string) string {
	if s == "" {
		return s // a success's reason: nothing to redact, nothing to allocate
	}
	for _, k := range r.keys {
		s = strings.ReplaceAll(s, k, redacted)
	}
	return shapedLikeAKey.ReplaceAllStringFunc(s, func(m string) string {
		if sub := shapedLikeAKey.FindStringSubmatch(m); sub[1] != "" {
			return sub[1] + redacted
		}
		return redacted
	})
}

func (r *redactor) bytes(b []byte) []byte {
	s := string(b)
	if out := r.string(s); out != s {
		return []byte(out)
	}
	return b
}
