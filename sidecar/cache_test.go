package sidecar_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

const cachedRoutes = `
routes:
  - name: cached
    models: ["*"]
    chain: [openai, anthropic]
    cache: {enabled: true, ttl: 1s}
retry: {attempts: 1}
`

// TestSidecar_Cache runs against the real Redis of the cluster.
func TestSidecar_Cache(t *testing.T) {
	r := newRig(t, "", 1, cachedRoutes)
	url := r.sidecars[0].url
	t.Run("a repeated request is a hit; the provider sees it once", func(t *testing.T) {
		r.fp.Reset()
		first := chat(t, url, hello)
		second := chat(t, url, strings.Replace(hello, `"model":"gpt-4o-mini",`, `"model": "gpt-4o-mini" ,`, 1))
		if first.status != 200 || first.cache != "miss" || second.status != 200 || second.cache != "hit" || second.body != first.body || second.provider != "openai" {
			t.Fatalf("first %+v\nsecond %+v", first, second)
		}
		if n := r.fp.Calls("openai"); n != 1 {
			t.Fatalf("provider calls = %d, want 1", n)
		}
	})
	t.Run("Cache-Control: no-cache bypasses it", func(t *testing.T) {
		r.fp.Reset()
		a := chat(t, url, hello, "Cache-Control", "no-cache")
		if a.status != 200 || a.cache != "bypass" || r.fp.Calls("openai") != 1 {
			t.Fatalf("bypass %+v, calls %d", a, r.fp.Calls("openai"))
		}
	})
	t.Run("another user is another entry", func(t *testing.T) {
		r.fp.Reset()
		a := chat(t, url, hello, "X-Fusebox-User", "someone-else")
		if a.cache != "miss" || r.fp.Calls("openai") != 1 {
			t.Fatalf("other user %+v", a)
		}
	})
	t.Run("entries expire after their ttl", func(t *testing.T) {
		r.fp.Reset()
		body := strings.Replace(hello, "Say hello", "Say hello, ttl", 1)
		if a := chat(t, url, body); a.cache != "miss" {
			t.Fatalf("%+v", a)
		}
		var a answer
		// Poll until the 1s entry is gone: each poll is a request that
		// either hits (entry alive) or misses (expired, the provider called).
		deadline := time.Now().Add(5 * time.Second)
		for a = chat(t, url, body); a.cache == "hit"; a = chat(t, url, body) {
			if time.Now().After(deadline) {
				t.Fatal("the entry outlived its ttl by 4s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if a.cache != "miss" || r.fp.Calls("openai") != 2 {
			t.Fatalf("after the ttl: %+v, provider calls %d", a, r.fp.Calls("openai"))
		}
	})
	t.Run("errors are never cached", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 400, Times: 1}); err != nil {
			t.Fatal(err)
		}
		body := strings.Replace(hello, "Say hello", "Say hello, error", 1)
		if a := chat(t, url, body); a.status != 400 {
			t.Fatalf("%+v", a)
		}
		if a := chat(t, url, body); a.status != 200 || a.cache != "miss" {
			t.Fatalf("the error was cached: %+v", a)
		}
	})
	t.Run("streams are never cached", func(t *testing.T) {
		r.fp.Reset()
		a := chat(t, url, helloStream)
		b := chat(t, url, helloStream)
		if a.cache != "" || b.cache != "" || r.fp.Calls("openai") != 2 {
			t.Fatalf("stream cache headers %q %q, calls %d", a.cache, b.cache, r.fp.Calls("openai"))
		}
	})
	t.Run("concurrent identical requests are coalesced into one call", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", fakeprovider.Fault{Kind: fakeprovider.FaultLatency, Latency: fakeprovider.Duration(300 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		body := strings.Replace(hello, "Say hello", "Say hello, together", 1)
		var wg sync.WaitGroup
		answers := make([]answer, 10)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = chatCtx(t, context.Background(), url, body)
			}()
		}
		wg.Wait()
		for i, a := range answers {
			if a.status != 200 || a.content() == "" {
				t.Fatalf("answer %d: %+v", i, a)
			}
		}
		if n := r.fp.Calls("openai"); n != 1 {
			t.Fatalf("10 concurrent identical requests made %d provider calls, want 1", n)
		}
	})
}
