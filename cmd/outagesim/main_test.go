package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/bench"
	"github.com/fusebox-io/fusebox/internal/logging/logtest"
)

// TestRun_LogLevel starts the simulation already cancelled: it logs its
// startup, then stops at once.
func TestRun_LogLevel(t *testing.T) {
	start := func(t *testing.T, args []string) []logtest.Line {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sink := &logtest.Sink{}
		args = append([]string{"-modes", bench.ModeNone, "-scale", "240", "-redis-url", "redis://:sim-pw-never-log-me@127.0.0.1:1"}, args...)
		err := run(ctx, args, func(string) string { return "" }, io.Discard, sink)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v, want it cancelled", err)
		}
		if strings.Contains(sink.String(), "sim-pw-never-log-me") {
			t.Fatalf("the password reached the log:\n%s", sink)
		}
		lines := logtest.Lines(t, sink.String())
		logtest.CheckComponents(t, lines, "outagesim")
		l, ok := logtest.Find(lines, "outagesim starting")
		if !ok || l.Str("redis") != "redis://:xxxxx@127.0.0.1:1" {
			t.Fatalf("startup line %v in\n%s", l, sink)
		}
		return lines
	}
	t.Run("writes no debug line by default", func(t *testing.T) {
		if n := logtest.Levels(start(t, nil))["debug"]; n != 0 {
			t.Fatalf("%d debug lines", n)
		}
	})
	t.Run("writes debug lines with --log-level debug", func(t *testing.T) {
		if _, ok := logtest.Find(start(t, []string{"-log-level", "debug"}), "effective configuration"); !ok {
			t.Fatal("no debug line")
		}
	})
	t.Run("refuses an unknown level", func(t *testing.T) {
		err := run(context.Background(), []string{"-log-level", "none"}, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--log-level") {
			t.Fatalf("err %v", err)
		}
	})
}
