package logging_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/internal/logging"
	"github.com/fusebox-io/fusebox/internal/logging/logtest"
)

func TestNew(t *testing.T) {
	t.Run("writes JSON with a millisecond timestamp and no component", func(t *testing.T) {
		var buf bytes.Buffer
		log, err := logging.New(&buf, logging.Config{})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now().Truncate(time.Millisecond)
		log.Info().Str("k", "v").Msg("hello")
		lines := logtest.Lines(t, buf.String())
		if len(lines) != 1 || lines[0].Str("message") != "hello" || lines[0].Str("level") != "info" {
			t.Fatalf("lines %v", lines)
		}
		if _, ok := lines[0]["component"]; ok {
			t.Fatalf("the base logger has a component: %v", lines[0])
		}
		ts, _ := time.Parse(logging.TimeFormat, lines[0].Str("time"))
		if ts.Before(before) || ts.After(time.Now()) {
			t.Fatalf("time %s is not now", ts)
		}
	})
	t.Run("drops debug lines by default and keeps them at debug", func(t *testing.T) {
		for _, tc := range []struct {
			level string
			want  int
		}{{"", 0}, {"info", 0}, {"warn", 0}, {"debug", 1}, {"trace", 1}} {
			var buf bytes.Buffer
			log, err := logging.New(&buf, logging.Config{Level: tc.level})
			if err != nil {
				t.Fatal(err)
			}
			log.Debug().Msg("detail")
			if n := logtest.Levels(logtest.Lines(t, buf.String()))["debug"]; n != tc.want {
				t.Fatalf("level %q: %d debug lines, want %d", tc.level, n, tc.want)
			}
		}
	})
	t.Run("writes console lines with the same timestamp", func(t *testing.T) {
		var buf bytes.Buffer
		log, err := logging.New(&buf, logging.Config{Format: logging.FormatConsole})
		if err != nil {
			t.Fatal(err)
		}
		log.Warn().Str("dependency", "redis").Msg("down")
		out := buf.String()
		fields := strings.Fields(out)
		if len(fields) < 3 || fields[1] != "WRN" || !strings.Contains(out, "dependency=redis") || strings.Contains(out, "\x1b[") {
			t.Fatalf("console line %q", out)
		}
		if _, err := time.Parse(logging.TimeFormat, fields[0]); err != nil || !strings.Contains(fields[0], ".") {
			t.Fatalf("console timestamp %q: %v", fields[0], err)
		}
	})
	t.Run("refuses an unknown level or format, naming the flag", func(t *testing.T) {
		for _, tc := range []struct {
			c    logging.Config
			want string
		}{
			{logging.Config{Level: "verbose"}, "--log-level"},
			{logging.Config{Level: "INFO "}, "--log-level"},
			{logging.Config{Format: "xml"}, "--log-format"},
		} {
			if _, err := logging.New(io.Discard, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%+v: err %v, want it to name %s", tc.c, err, tc.want)
			}
		}
	})
}

func TestFlags(t *testing.T) {
	env := map[string]string{"FUSEBOX_LOG_LEVEL": "warn", "FUSEBOX_LOG_FORMAT": "console"}
	t.Run("default to the environment", func(t *testing.T) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c := logging.Flags(fs, func(k string) string { return env[k] }, "json")
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if c.Level != "warn" || c.Format != "console" {
			t.Fatalf("%+v", *c)
		}
	})
	t.Run("lose to the command line", func(t *testing.T) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		c := logging.Flags(fs, func(k string) string { return env[k] }, "json")
		if err := fs.Parse([]string{"--log-level", "debug", "--log-format", "json"}); err != nil {
			t.Fatal(err)
		}
		if c.Level != "debug" || c.Format != "json" {
			t.Fatalf("%+v", *c)
		}
	})
}

// TestRouteRedis_GoRedisLineComesOutAsJSON makes go-redis log for real:
// a Sentinel client whose sentinel does not answer logs each failed
// lookup through its internal logger.
func TestRouteRedis_GoRedisLineComesOutAsJSON(t *testing.T) {
	sink := &logtest.Sink{}
	log, err := logging.New(sink, logging.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logging.RouteRedis(log)
	t.Cleanup(func() { logging.RouteRedis(zerologNop()) })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{closed}, MaxRetries: -1})
	defer c.Close()
	var got logtest.Line
	deadline := time.Now().Add(10 * time.Second)
	for got == nil {
		if time.Now().After(deadline) {
			t.Fatalf("go-redis's line did not reach the logger:\n%s", sink.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			t.Fatal("a ping through a sentinel that is not there succeeded")
		}
		for _, line := range logtest.Lines(t, sink.String()) {
			if strings.Contains(line.Str("message"), "GetMasterAddrByName") {
				got = line
			}
		}
	}
	if got.Str("level") != "warn" || got.Str("component") != "go-redis" || !strings.Contains(got.Str("message"), closed) {
		t.Fatalf("go-redis line %v", got)
	}
}

func TestLineWriter(t *testing.T) {
	sink := &logtest.Sink{}
	log, _ := logging.New(sink, logging.Config{})
	w := logging.LineWriter(log)
	if _, err := io.WriteString(w, "fusebox: outage begins\n"); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "a\nb\n\n")
	lines := logtest.Lines(t, sink.String())
	var msgs []string
	for _, l := range lines {
		if l.Str("level") != "info" {
			t.Fatalf("level %v", l)
		}
		msgs = append(msgs, l.Str("message"))
	}
	if strings.Join(msgs, "|") != "fusebox: outage begins|a|b" {
		t.Fatalf("messages %q", msgs)
	}
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }
