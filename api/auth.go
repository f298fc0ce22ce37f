package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fusebox-io/fusebox/config"
)

// authenticator checks bearer tokens. Secrets are kept as SHA-256 digests
// and compared in constant time against every token, so neither a
// secret's length nor its position in the list shows in the timing.
type authenticator struct {
	tokens []hashedToken
}

type hashedToken struct {
	name   string
	role   config.Role
	digest [32]byte
}

func newAuthenticator(ts []config.Token) *authenticator {
	a := &authenticator{}
	for _, t := range ts {
		a.tokens = append(a.tokens, hashedToken{name: t.Name, role: t.Role, digest: sha256.Sum256([]byte(t.Secret))})
	}
	return a
}

// identify returns the token presented, if it is one of ours.
func (a *authenticator) identify(secret string) (hashedToken, bool) {
	d := sha256.Sum256([]byte(secret))
	var found hashedToken
	ok := 0
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = t
			ok = 1
		}
	}
	return found, ok == 1
}

// allows reports whether a token's role covers what a route needs: every
// role may read; agents may report; admins may override.
func allows(have, need config.Role) bool {
	return need == config.RoleRead || have == need
}

const actorKey = "fusebox.actor"

// require lets a request through only with a token whose role covers need.
func (s *Server) require(need config.Role, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, secret, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="fusebox"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "a bearer token is required")
		}
		t, ok := s.auth.identify(strings.TrimSpace(secret))
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="fusebox", error="invalid_token"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "unknown token")
		}
		if !allows(t.role, need) {
			return echo.NewHTTPError(http.StatusForbidden, "this token's role ("+string(t.role)+") may not do this; it needs "+string(need))
		}
		c.Set(actorKey, t.name)
		return next(c)
	}
}

// actor is the name of the token that made the request.
func actor(c echo.Context) string {
	if a, ok := c.Get(actorKey).(string); ok {
		return a
	}
	return "unknown"
}
