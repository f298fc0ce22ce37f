package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/sidecar"
)

// checkLinks looks once, at start, at each link the sidecar depends on,
// and warns about one that does not answer, naming it (agentlib's own
// degraded warning says only that one of them is down). The sidecar
// serves either way, on local breakers.
func checkLinks(ctx context.Context, log zerolog.Logger, rdb redis.UniversalClient, o options) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := rdb.Ping(ctx).Err(); err != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
			log.Warn().Err(err).Str("dependency", "redis").Str("redis", logging.RedactURL(o.redisURL)).
				Msg("redis not reachable at start: serving on local breakers until it is")
		}
	})
	client := &http.Client{}
	for _, base := range strings.Split(o.coordinator, ",") {
		base = strings.TrimRight(strings.TrimSpace(base), "/")
		wg.Go(func() {
			err := getOK(ctx, client, base+"/healthz")
			if err != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
				log.Warn().Err(err).Str("dependency", "coordinator").Str("coordinator", logging.RedactURL(base)).
					Msg("coordinator not reachable at start: reports go to the next one, or wait")
			}
		})
	}
	wg.Wait()
}

// getOK GETs u and wants a 200. Its error never holds the URL (which may
// carry credentials): the caller logs the URL redacted.
func getOK(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errors.New("invalid URL")
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// providerNames lists the configured providers with their kinds.
func providerNames(cfg *sidecar.Config) []string {
	out := make([]string, 0, len(cfg.Providers))
	for name, p := range cfg.Providers {
		out = append(out, name+":"+string(p.Kind))
	}
	slices.Sort(out)
	return out
}

// routeNames lists the routes with the APIs they serve and their chains,
// in match order: "chat [chat messages]: openai > anthropic > ollama".
func routeNames(cfg *sidecar.Config) []string {
	out := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names := make([]string, 0, len(r.Chain))
		for _, p := range r.Chain {
			names = append(names, p.Name)
		}
		apis := make([]string, 0, len(r.APIs))
		for _, a := range r.APIs {
			apis = append(apis, string(a))
		}
		out = append(out, r.Name+" ["+strings.Join(apis, " ")+"]: "+strings.Join(names, " > "))
	}
	return out
}
