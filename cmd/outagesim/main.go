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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "outagesim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outagesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scale := fs.Float64("scale", 8, "divide every duration by this (8: each mode's 8-minute scenario takes 1 minute)")
	realtime := fs.Bool("realtime", false, "run in real time (the same as -scale 1: 8 minutes per mode)")
	replicas := fs.Int("replicas", 3, "replicas of the app")
	modes := fs.String("modes", strings.Join([]string{bench.ModeNone, bench.ModeGobreaker, bench.ModeFusebox}, ","), "modes to run, comma-separated")
	redisURL := fs.String("redis-url", "", "Redis for fusebox mode (default: an embedded server)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *realtime {
		*scale = 1
	}
	if *scale < 1 || *scale > 240 {
		return fmt.Errorf("-scale: want 1 to 240, got %g", *scale)
	}
	cfg := bench.SimConfig{Scale: *scale, Replicas: *replicas, Modes: strings.Split(*modes, ","), RedisURL: *redisURL, Progress: stderr}
	rows, err := bench.RunSim(ctx, cfg)
	if err != nil {
		return err
	}
	bench.WriteTable(stdout, cfg, rows)
	return nil
}
