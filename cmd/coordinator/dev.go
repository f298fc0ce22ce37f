package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/config"
)

// devBanner is what `--dev` prints for a human: the addresses, the
// generated tokens, and the exact settings that point a sidecar or a Go
// agent at this coordinator.
type devBanner struct {
	api, redis string // as listening
	prefix     string
	generated  []config.Token // by --dev; nil when tokens were configured
}

func printDev(w io.Writer, b devBanner) {
	apiURL, redisURL := dialableURL(b.api), dialableURL(b.redis)
	secret := map[config.Role]string{}
	for _, t := range b.generated {
		secret[t.Role] = t.Secret
	}
	agentToken := secret[config.RoleAgent]
	if agentToken == "" {
		agentToken = "<your agent-role token>"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nfusebox dev mode\n  API:   %s   (dashboard at /)\n  Redis: %s   (FUSEBOX_REDIS_URL for agents)\n", apiURL, redisURL)
	for _, t := range b.generated {
		fmt.Fprintf(&sb, "  %-5s token: %s\n", t.Role, t.Secret)
	}
	env := fmt.Sprintf("FUSEBOX_REDIS_URL=%s FUSEBOX_COORDINATOR_URL=%s FUSEBOX_AGENT_TOKEN=%s", redisURL, apiURL, agentToken)
	goCfg := fmt.Sprintf("agentlib.Config{CoordinatorURL: %q, RedisURL: %q, Token: %q", apiURL, redisURL, agentToken)
	if b.prefix != defaults.Prefix {
		env += " FUSEBOX_PREFIX=" + b.prefix
		goCfg += fmt.Sprintf(", Prefix: %q", b.prefix)
	}
	fmt.Fprintf(&sb, "\n  a sidecar (examples/sidecar.yaml calls the fake provider, go run ./cmd/fakeprovider: no key needed):\n    %s go run ./cmd/agent --config examples/sidecar.yaml\n", env)
	fmt.Fprintf(&sb, "  an agent in Go:\n    %s}\n", goCfg)
	if len(b.generated) > 0 {
		fmt.Fprintf(&sb, "  curl, as in the README:\n    export ADMIN_TOKEN=%s AGENT_TOKEN=%s READ_TOKEN=%s\n",
			secret[config.RoleAdmin], secret[config.RoleAgent], secret[config.RoleRead])
	}
	sb.WriteString("\n")
	_, _ = io.WriteString(w, sb.String())
}

// dialableURL turns a listening address (0.0.0.0, [::]) into one a
// client on this machine can dial.
func dialableURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return raw
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		u.Host = net.JoinHostPort("127.0.0.1", port)
	}
	return u.String()
}
