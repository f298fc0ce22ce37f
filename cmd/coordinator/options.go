package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

var errHelp = errors.New("help requested")

type options struct {
	redisURL     string
	listen       string
	configPath   string
	id           string
	prefix       string
	tick         time.Duration
	lockMargin   time.Duration
	dev          bool
	devRedisAddr string
	logFormat    string
	logLevel     zerolog.Level
}

// parseOptions reads flags, each defaulting to its FUSEBOX_* variable.
// A flag given on the command line wins over the variable.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.redisURL, "redis-url", env("FUSEBOX_REDIS_URL", "redis://127.0.0.1:6379"),
		"Redis URL: redis://, rediss:// (TLS), redis+sentinel://…?master_name=, redis+cluster:// (env FUSEBOX_REDIS_URL)")
	fs.StringVar(&o.listen, "listen", env("FUSEBOX_LISTEN", "127.0.0.1:8080"), "HTTP listen address (env FUSEBOX_LISTEN)")
	fs.StringVar(&o.configPath, "config", env("FUSEBOX_CONFIG", ""), "YAML config file with breaker policies (env FUSEBOX_CONFIG)")
	fs.StringVar(&o.id, "id", env("FUSEBOX_ID", ""), "this coordinator's name in the journal (env FUSEBOX_ID; default coordinator-<host>-<pid>)")
	fs.StringVar(&o.prefix, "prefix", env("FUSEBOX_PREFIX", "fusebox"), "prefix of every Redis key (env FUSEBOX_PREFIX)")
	fs.StringVar(&o.devRedisAddr, "dev-redis-addr", env("FUSEBOX_DEV_REDIS_ADDR", "127.0.0.1:6380"), "with --dev: where the embedded Redis listens (env FUSEBOX_DEV_REDIS_ADDR)")
	fs.StringVar(&o.logFormat, "log-format", env("FUSEBOX_LOG_FORMAT", ""), "json or console (env FUSEBOX_LOG_FORMAT; default json, console with --dev)")
	logLevel := fs.String("log-level", env("FUSEBOX_LOG_LEVEL", "info"), "debug, info, warn or error (env FUSEBOX_LOG_LEVEL)")

	devDefault, err := envBool(getenv, "FUSEBOX_DEV")
	if err != nil {
		return o, err
	}
	fs.BoolVar(&o.dev, "dev", devDefault, "run an embedded Redis-compatible server in this process (env FUSEBOX_DEV)")
	tickDefault, err := envDuration(getenv, "FUSEBOX_TICK", 100*time.Millisecond)
	if err != nil {
		return o, err
	}
	fs.DurationVar(&o.tick, "tick", tickDefault, "how often due breakers are moved on (env FUSEBOX_TICK)")
	marginDefault, err := envDuration(getenv, "FUSEBOX_PROBE_LOCK_MARGIN", 2*time.Second)
	if err != nil {
		return o, err
	}
	fs.DurationVar(&o.lockMargin, "probe-lock-margin", marginDefault, "added to a canary's timeout for its window lock's expiry (env FUSEBOX_PROBE_LOCK_MARGIN)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, errHelp
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.tick < time.Millisecond {
		return o, fmt.Errorf("--tick: must be at least 1ms, got %s", o.tick)
	}
	if o.lockMargin < time.Millisecond {
		return o, fmt.Errorf("--probe-lock-margin: must be at least 1ms, got %s", o.lockMargin)
	}
	if o.logFormat == "" {
		o.logFormat = "json"
		if o.dev {
			o.logFormat = "console"
		}
	}
	if o.logFormat != "json" && o.logFormat != "console" {
		return o, fmt.Errorf("--log-format: want json or console, got %q", o.logFormat)
	}
	if o.logLevel, err = zerolog.ParseLevel(*logLevel); err != nil || *logLevel == "" {
		return o, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", *logLevel)
	}
	return o, nil
}

func envBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true or false, got %q", name, v)
	}
	return b, nil
}

func envDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: want a duration like 100ms, got %q", name, v)
	}
	return d, nil
}
