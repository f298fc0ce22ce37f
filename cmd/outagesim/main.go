// Command outagesim runs the seed article's outage scenario for real:
// replicas of an app calling a primary LLM provider that hangs for five
// minutes (30-second timeouts), 100 requests a minute, with a fallback
// provider, in three modes: no breaker (retrying 3 times with 2-10 s
// exponential backoff), a gobreaker per replica, and fusebox sidecars. It
// prints the seed's table per mode.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "outagesim:", err)
		os.Exit(1)
	}
}

// run prints the table on stdout; its logs, progress included, go to
// stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outagesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scale := fs.Float64("scale", 8, "divide every duration by this (8: each mode's 8-minute scenario takes 1 minute)")
	realtime := fs.Bool("realtime", false, "run in real time (the same as -scale 1: 8 minutes per mode)")
	replicas := fs.Int("replicas", 3, "replicas of the app")
	modes := fs.String("modes", strings.Join([]string{bench.ModeNone, bench.ModeGobreaker, bench.ModeFusebox}, ","), "modes to run, comma-separated")
	redisURL := fs.String("redis-url", "", "Redis for fusebox mode (default: an embedded server)")
	logCfg := logging.Flags(fs, getenv, "json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	base, err := logging.New(stderr, *logCfg)
	if err != nil {
		return err
	}
	logging.RouteLibraries(base)
	log := base.With().Str("component", "outagesim").Logger()
	if *realtime {
		*scale = 1
	}
	if *scale < 1 || *scale > 240 {
		return fmt.Errorf("-scale: want 1 to 240, got %g", *scale)
	}
	modeList := strings.Split(*modes, ",")
	redis := "embedded"
	if *redisURL != "" {
		redis = logging.RedactURL(*redisURL)
	}
	log.Info().Strs("modes", modeList).Int("replicas", *replicas).Float64("scale", *scale).Str("redis", redis).
		Msg("outagesim starting")
	log.Debug().Bool("realtime", *realtime).Msg("effective configuration")
	cfg := bench.SimConfig{Scale: *scale, Replicas: *replicas, Modes: modeList, RedisURL: *redisURL, Progress: logging.LineWriter(log)}
	rows, err := bench.RunSim(ctx, cfg)
	if err != nil {
		return err
	}
	bench.WriteTable(stdout, cfg, rows)
	return nil
}
