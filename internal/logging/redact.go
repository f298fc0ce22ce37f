package logging

import (
	"net/url"
	"strings"
)

// Redacted replaces a secret in a logged URL.
const Redacted = "xxxxx"

// RedactURL returns raw fit for a log line: the password of its user
// info becomes xxxxx (user:xxxxx@), and so does the value of a query
// parameter named like a secret (go-redis reads password= on Sentinel
// URLs). A URL that does not parse is replaced whole, since where its
// secret sits cannot be known.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if secretParam(k) {
				q[k] = []string{Redacted}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// RedactURLs redacts each URL of a comma-separated list.
func RedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = RedactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func secretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "secret", "token", "key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
