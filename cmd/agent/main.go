// Command agent is the fusebox sidecar: an OpenAI-compatible proxy on
// loopback with a fallback chain of providers, each behind a cluster-wide
// breaker. Point an app's OpenAI base URL at it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/internal/telemetry"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

type options struct {
	listen, config, coordinator, redisURL, token, id, prefix string
	resync, drain                                            time.Duration
	log                                                      logging.Config
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.listen, "listen", env("FUSEBOX_AGENT_LISTEN", "127.0.0.1:8787"), "listen address (env FUSEBOX_AGENT_LISTEN)")
	fs.StringVar(&o.config, "config", env("FUSEBOX_AGENT_CONFIG", ""), "routes and providers YAML (env FUSEBOX_AGENT_CONFIG); required")
	fs.StringVar(&o.coordinator, "coordinator-url", env("FUSEBOX_COORDINATOR_URL", defaults.CoordinatorURL), "coordinator base URL, comma-separated for several (env FUSEBOX_COORDINATOR_URL)")
	fs.StringVar(&o.redisURL, "redis-url", env("FUSEBOX_REDIS_URL", defaults.RedisURL), "the coordinators' Redis (env FUSEBOX_REDIS_URL)")
	fs.StringVar(&o.token, "token", env("FUSEBOX_AGENT_TOKEN", ""), "API token with the agent role (env FUSEBOX_AGENT_TOKEN)")
	fs.StringVar(&o.id, "id", env("FUSEBOX_AGENT_ID", ""), "agent id (env FUSEBOX_AGENT_ID; default <host>-<pid>)")
	fs.StringVar(&o.prefix, "prefix", env("FUSEBOX_PREFIX", defaults.Prefix), "Redis key prefix, as the coordinators' (env FUSEBOX_PREFIX)")
	logCfg := logging.Flags(fs, getenv, "json")
	for _, d := range []struct {
		dst  *time.Duration
		flag string
		env  string
		def  time.Duration
		help string
	}{
		{&o.resync, "resync", "FUSEBOX_RESYNC_INTERVAL", 2 * time.Second, "bound on mirror staleness (env FUSEBOX_RESYNC_INTERVAL)"},
		{&o.drain, "drain", "FUSEBOX_DRAIN_TIMEOUT", 30 * time.Second, "how long shutdown waits for requests in flight (env FUSEBOX_DRAIN_TIMEOUT)"},
	} {
		def := d.def
		if v := getenv(d.env); v != "" {
			var err error
			if def, err = time.ParseDuration(v); err != nil || def <= 0 {
				return o, fmt.Errorf("%s: want a positive duration like 1s, got %q", d.env, v)
			}
		}
		fs.DurationVar(d.dst, d.flag, def, d.help)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.config == "" {
		return o, errors.New("--config (or FUSEBOX_AGENT_CONFIG) is required: the routes and providers file")
	}
	o.log = *logCfg
	if err := o.log.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// agentlib adds component=agent to the logger it is given: it gets
	// the one without a component, the sidecar's lines say sidecar.
	base, err := logging.New(stderr, o.log)
	if err != nil {
		return err
	}
	logging.RouteLibraries(base)
	log := base.With().Str("component", "sidecar").Logger()

	cfg, err := sidecar.LoadConfig(o.config, getenv)
	if err != nil {
		return err
	}
	// Traces: the standard OTEL_* variables; off when none is set.
	tracing, err := telemetry.New(ctx, telemetry.Options{ServiceName: "fusebox-sidecar", Getenv: getenv, Logger: &log})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("tracing: the last spans were not sent")
		}
	}()
	rdb, err := statestore.Dial(o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	agent, err := agentlib.New(agentlib.Config{
		CoordinatorURL: o.coordinator, Redis: rdb, RedisLabel: o.redisURL, Prefix: o.prefix, AgentID: o.id, Token: o.token,
		ResyncInterval: o.resync, Logger: &base, TracerProvider: tracing.Provider,
	})
	if err != nil {
		return err
	}
	defer agent.Close()
	so := sidecar.Options{Config: cfg, Agent: agent, Redis: rdb, CachePrefix: o.prefix, Logger: &log}
	if tracing.On {
		so.TracerProvider, so.Propagator = tracing.Provider, tracing.Propagator
	}
	srv, err := sidecar.New(so)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: logging.HTTPErrorLog(base)}
	log.Info().Str("listen", "http://"+ln.Addr().String()).Str("coordinators", logging.RedactURLs(o.coordinator)).
		Str("redis", logging.RedactURL(o.redisURL)).Str("config", o.config).Str("prefix", o.prefix).Str("id", agent.ID()).
		Int("routes", len(cfg.Routes)).Int("providers", len(cfg.Providers)).Msg("sidecar starting")
	if tracing.On {
		log.Info().Str("protocol", tracing.Protocol).Str("endpoint", tracing.Endpoint).Msg("tracing on: spans exported over OTLP")
	} else {
		log.Info().Msg("tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER=otlp)")
	}
	log.Debug().Dur("resync", o.resync).Dur("drain", o.drain).Bool("token", o.token != "").
		Strs("providers", providerNames(cfg)).Strs("routes", routeNames(cfg)).Msg("effective configuration")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		checkLinks(gctx, log, rdb, o)
		return nil
	})
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Drain: requests in flight finish (streams included) within the
		// drain timeout; new connections are refused.
		sctx, cancel := context.WithTimeout(context.Background(), o.drain)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	err = g.Wait()
	log.Info().Msg("sidecar stopped")
	return err
}
