package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/internal/logging"
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
	log          logging.Config
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
	fs.StringVar(&o.redisURL, "redis-url", env("FUSEBOX_REDIS_URL", defaults.RedisURL),
		"Redis URL: redis://, rediss:// (TLS), redis+sentinel://…?master_name=, redis+cluster:// (env FUSEBOX_REDIS_URL)")
	fs.StringVar(&o.listen, "listen", env("FUSEBOX_LISTEN", defaults.CoordinatorListen), "HTTP listen address (env FUSEBOX_LISTEN)")
	fs.StringVar(&o.configPath, "config", env("FUSEBOX_CONFIG", ""), "YAML config file with breaker policies (env FUSEBOX_CONFIG)")
	fs.StringVar(&o.id, "id", env("FUSEBOX_ID", ""), "this coordinator's name in the journal (env FUSEBOX_ID; default coordinator-<host>-<pid>)")
	fs.StringVar(&o.prefix, "prefix", env("FUSEBOX_PREFIX", defaults.Prefix), "prefix of every Redis key (env FUSEBOX_PREFIX)")
	fs.StringVar(&o.devRedisAddr, "dev-redis-addr", env("FUSEBOX_DEV_REDIS_ADDR", defaults.DevRedisAddr), "with --dev: where the embedded Redis listens (env FUSEBOX_DEV_REDIS_ADDR)")
	logCfg := logging.Flags(fs, getenv, "json, console with --dev")

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
	o.log = *logCfg
	if o.log.Format == "" {
		o.log.Format = logging.FormatJSON
		if o.dev {
			o.log.Format = logging.FormatConsole
		}
	}
	if err := o.log.Validate(); err != nil {
		return o, err
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
