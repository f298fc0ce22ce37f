// Command coordinator keeps the cluster state of fusebox breakers in Redis:
// it applies agents' outcome reports, moves due breakers to half-open, and
// serves the HTTP API. Run any number against one Redis. With --dev it
// runs an embedded Redis-compatible server in the same process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/sync/errgroup"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/statestore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	opts, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	base, err := logging.New(stderr, opts.log)
	if err != nil {
		return err
	}
	logging.RouteLibraries(base)
	log := base.With().Str("component", "coordinator").Logger()

	cfg := config.Default()
	if opts.configPath != "" {
		if cfg, err = config.Load(opts.configPath); err != nil {
			return err
		}
	}

	limits := opts.limits(cfg.Limits)
	if err := limits.Validate(); err != nil {
		return fmt.Errorf("%w (from the flags, their variables or the config file)", err)
	}

	redisURL := opts.redisURL
	if opts.dev {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(opts.devRedisAddr); err != nil {
			return fmt.Errorf("dev: embedded redis on %s: %w (choose another with --dev-redis-addr)", opts.devRedisAddr, err)
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr()
	}
	rdb, err := statestore.Dial(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := statestore.New(rdb, statestore.Options{Prefix: opts.prefix})
	if err != nil {
		return err
	}
	// Every unset variable the file names, at once, before anything else.
	if err := cfg.CheckEnv(getenv); err != nil {
		return err
	}
	canaries, err := probe.NewAll(cfg.Canaries, getenv, nil)
	if err != nil {
		return err
	}
	// The coordinator's lines name the Redis it works on (without
	// credentials): a warning that Redis failed says which one.
	coordLog := log.With().Str("redis", logging.RedactURL(redisURL)).Logger()
	coord, err := coordinator.New(coordinator.Config{
		ID: opts.id, TickInterval: opts.tick, Logger: &coordLog, Canaries: canaries, ProbeLockMargin: opts.lockMargin,
		Limits:    statestore.Limits{MaxBreakers: limits.MaxBreakers, MaxPerAgent: limits.MaxBreakersPerAgent},
		Retention: limits.Retention, MetricsMaxBreakers: limits.MetricsMaxBreakers,
	}, store, cfg)
	if err != nil {
		return err
	}

	tokens, err := cfg.ResolveTokens(getenv)
	if err != nil {
		return err
	}
	envTokens, err := parseEnvTokens(getenv("FUSEBOX_TOKENS"))
	if err != nil {
		return err
	}
	tokens = append(tokens, envTokens...)
	var devTokens []config.Token
	if len(tokens) == 0 {
		if !opts.dev {
			return errors.New("no API tokens: name them under auth.tokens in the config file, or set FUSEBOX_TOKENS=name:role:secret[,…] (roles: read, agent, admin)")
		}
		if devTokens, err = generateDevTokens(); err != nil {
			return err
		}
		tokens = devTokens
	}

	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.listen, err)
	}
	apiSrv := api.New(api.Config{Logger: &log, Tokens: tokens, MetricsPublic: cfg.MetricsArePublic(), Collectors: coord.Collectors()}, coord.Service)
	srv := &http.Server{
		Handler:           apiSrv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          logging.HTTPErrorLog(base),
	}
	srv.RegisterOnShutdown(apiSrv.CloseStreams)
	apiURL := "http://" + ln.Addr().String()
	log.Info().Str("id", coord.ID()).Str("api", apiURL).Str("redis", logging.RedactURL(redisURL)).
		Str("config", orNone(opts.configPath)).Str("prefix", opts.prefix).Bool("dev", opts.dev).
		Int("breakers_configured", len(cfg.Names())).Int("tokens", len(tokens)).Msg("coordinator starting")
	log.Debug().Int("max_breakers", limits.MaxBreakers).Int("max_breakers_per_agent", limits.MaxBreakersPerAgent).
		Dur("retention", limits.Retention).Int("metrics_max_breakers", limits.MetricsMaxBreakers).Msg("limits")
	log.Debug().Dur("tick", opts.tick).Dur("probe_lock_margin", opts.lockMargin).Strs("breakers", cfg.Names()).
		Strs("tokens", tokenNames(tokens)).Int("canaries", len(canaries)).Msg("effective configuration")
	if opts.dev {
		printDev(stderr, devBanner{api: apiURL, redis: redisURL, prefix: opts.prefix, generated: devTokens})
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// In the background: a Redis that does not answer must not hold
		// up the API, whose /readyz says the same thing.
		rctx, cancel := context.WithTimeout(gctx, time.Second)
		defer cancel()
		if err := coord.Ready(rctx); err != nil && gctx.Err() == nil {
			log.Warn().Err(err).Str("dependency", "redis").Str("redis", logging.RedactURL(redisURL)).
				Msg("redis not reachable yet; /readyz answers 503 until it is")
		}
		return nil
	})
	g.Go(func() error { return coord.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	err = g.Wait()
	log.Info().Msg("coordinator stopped")
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// tokenNames lists name:role of each token, never a secret.
func tokenNames(ts []config.Token) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Name+":"+string(t.Role))
	}
	return out
}
