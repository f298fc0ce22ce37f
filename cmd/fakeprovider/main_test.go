package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/logging/logtest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// runFake runs the fake provider with args until it has answered one
// request, and gives its log lines.
func runFake(t *testing.T, args []string, env map[string]string) []logtest.Line {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &logtest.Sink{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, sink)
	}()
	var url string
	testcluster.EventuallyEvery(t, 10*time.Second, 5*time.Millisecond, "the startup line", func() bool {
		for _, line := range strings.Split(sink.String(), "\n") {
			if l, err := logtest.Parse(line); err == nil && l.Str("message") == "fakeprovider starting" {
				url = l.Str("listen")
			}
		}
		return url != ""
	})
	resp, err := http.Get(url + "/openai/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	lines := logtest.Lines(t, sink.String())
	logtest.CheckComponents(t, lines, "fakeprovider")
	return lines
}

func TestRun_LogLevel(t *testing.T) {
	t.Run("writes no debug line by default", func(t *testing.T) {
		lines := runFake(t, nil, nil)
		if n := logtest.Levels(lines)["debug"]; n != 0 {
			t.Fatalf("%d debug lines by default", n)
		}
		start, _ := logtest.Find(lines, "fakeprovider starting")
		if !strings.HasSuffix(start.Str("openai"), "/openai/v1") {
			t.Fatalf("startup line %v", start)
		}
	})
	t.Run("logs each request at debug", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			env  map[string]string
		}{
			{[]string{"--log-level", "debug"}, nil},
			{nil, map[string]string{"FUSEBOX_LOG_LEVEL": "debug"}},
		} {
			l, ok := logtest.Find(runFake(t, tc.args, tc.env), "request")
			if !ok || l.Str("level") != "debug" || l.Str("path") != "/openai/v1/models" {
				t.Fatalf("%v %v: request line %v", tc.args, tc.env, l)
			}
		}
	})
	t.Run("refuses an unknown level", func(t *testing.T) {
		err := run(context.Background(), []string{"--log-level", "all"}, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--log-level") {
			t.Fatalf("err %v", err)
		}
	})
}
