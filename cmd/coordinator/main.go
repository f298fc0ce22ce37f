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
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
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
	log := newLogger(opts, stderr)

	cfg := config.Default()
	if opts.configPath != "" {
		if cfg, err = config.Load(opts.configPath); err != nil {
			return err
		}
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
	canaries, err := probe.NewAll(cfg.Canaries, getenv, nil)
	if err != nil {
		return err
	}
	coord, err := coordinator.New(coordinator.Config{
		ID: opts.id, TickInterval: opts.tick, Logger: &log, Canaries: canaries, ProbeLockMargin: opts.lockMargin,
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
	apiSrv := api.New(api.Config{Logger: &log, Tokens: tokens, MetricsPublic: cfg.MetricsArePublic(), Collectors: coord.Collectors()}, coord)
	srv := &http.Server{
		Handler:           apiSrv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	srv.RegisterOnShutdown(apiSrv.CloseStreams)
	apiURL := "http://" + ln.Addr().String()
	log.Info().Str("id", coord.ID()).Str("api", apiURL).Str("redis", redactURL(redisURL)).
		Bool("dev", opts.dev).Int("breakers_configured", len(cfg.Names())).Msg("coordinator starting")
	if opts.dev {
		fmt.Fprintf(stderr, "\nfusebox dev mode\n  API:   %s   (dashboard at /)\n  Redis: %s   (FUSEBOX_REDIS_URL for agents)\n", apiURL, redisURL)
		for _, t := range devTokens {
			fmt.Fprintf(stderr, "  %-5s token: %s\n", t.Role, t.Secret)
		}
		fmt.Fprintln(stderr)
	}
	if err := coord.Ready(ctx); err != nil {
		log.Warn().Err(err).Msg("redis not reachable yet; /readyz answers 503 until it is")
	}

	g, gctx := errgroup.WithContext(ctx)
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

func newLogger(o options, w io.Writer) zerolog.Logger {
	var out io.Writer = w
	if o.logFormat == "console" {
		f, isFile := w.(*os.File)
		color := isFile && isatty.IsTerminal(f.Fd())
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !color}
	}
	return zerolog.New(out).Level(o.logLevel).With().Timestamp().Str("component", "coordinator").Logger()
}

// redactURL hides the password in a Redis URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
