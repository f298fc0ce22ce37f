package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/fusebox-io/fusebox/cmd/internal/defaults"
	"github.com/fusebox-io/fusebox/config"
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
	// Limits from flags or their variables; -1: not given (the config
	// file's, else the default).
	maxBreakers, maxPerAgent, metricsMax int
	retention                            time.Duration
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

	for _, f := range []struct {
		dst       *int
		name, env string
		help      string
	}{
		{&o.maxBreakers, "max-breakers", "FUSEBOX_MAX_BREAKERS", "agents may not register a new breaker past this many (0: no limit; config limits.max_breakers, default 10000)"},
		{&o.maxPerAgent, "max-breakers-per-agent", "FUSEBOX_MAX_BREAKERS_PER_AGENT", "breakers one agent may have registered (0: no limit; config limits.max_breakers_per_agent, default 1000)"},
		{&o.metricsMax, "metrics-max-breakers", "FUSEBOX_METRICS_MAX_BREAKERS", "breakers with a fusebox_breaker_state series (config limits.metrics_max_breakers, default 1000)"},
	} {
		def := -1
		if v := getenv(f.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("%s: want a whole number, 0 or more, got %q", f.env, v)
			}
			def = n
		}
		fs.IntVar(f.dst, f.name, def, f.help+" (env "+f.env+")")
	}
	retentionDefault, err := envDuration(getenv, "FUSEBOX_RETENTION", -1)
	if err != nil {
		return o, err
	}
	fs.DurationVar(&o.retention, "retention", retentionDefault, "delete breakers no agent reported for this long, unless configured or overridden (0: never; config limits.retention, default 24h) (env FUSEBOX_RETENTION)")

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
	for _, c := range []struct {
		name string
		v    int
	}{{"--max-breakers", o.maxBreakers}, {"--max-breakers-per-agent", o.maxPerAgent}, {"--metrics-max-breakers", o.metricsMax}} {
		if c.v < -1 {
			return o, fmt.Errorf("%s: must be 0 or more, got %d", c.name, c.v)
		}
	}
	if o.retention < -1 {
		return o, fmt.Errorf("--retention: must be 0 (never) or more, got %s", o.retention)
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

// limits is the file's limits with what the flags (or their variables)
// set on top.
func (o options) limits(file config.Limits) config.Limits {
	l := file
	if o.maxBreakers >= 0 {
		l.MaxBreakers = o.maxBreakers
	}
	if o.maxPerAgent >= 0 {
		l.MaxBreakersPerAgent = o.maxPerAgent
	}
	if o.metricsMax >= 0 {
		l.MetricsMaxBreakers = o.metricsMax
	}
	if o.retention >= 0 {
		l.Retention = o.retention
	}
	return l
}
