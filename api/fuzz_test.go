package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/coordinator"
	"github.com/fusebox-io/fusebox/internal/redistest"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// FuzzServer sends arbitrary methods, paths, bodies and tokens through the
// whole handler stack: nothing a client sends may cause a 500 or a panic
// (which the recover middleware would turn into a 500), and every error is
// a problem document. Seeds live in testdata/fuzz/FuzzServer.
func FuzzServer(f *testing.F) {
	b := redistest.Mini(f)
	store, err := statestore.New(b.Client, statestore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := config.Parse([]byte("breakers:\n  openai:\n    open_timeout: 1m\n"))
	if err != nil {
		f.Fatal(err)
	}
	coord, err := coordinator.New(coordinator.Config{Limits: statestore.Limits{MaxBreakers: 50, MaxPerAgent: 20}}, store, cfg)
	if err != nil {
		f.Fatal(err)
	}
	srv := api.New(api.Config{BodyLimit: 64 << 10, Tokens: testcluster.Tokens}, coord)
	tokens := []string{"", testcluster.ReadToken, testcluster.AgentToken, testcluster.AdminToken, "garbage"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}

	f.Add(uint8(1), "/v1/reports", []byte(`{"agent":"a","breakers":[{"name":"openai","fail":5,"trailing_fail":5}]}`), uint8(2), "application/json")
	f.Add(uint8(1), "/v1/breakers/openai/force-open", []byte(`{"reason":"x","ttl":"1m"}`), uint8(3), "application/json")
	f.Add(uint8(0), "/v1/breakers/openai/events?limit=3&before=1-0", []byte(nil), uint8(1), "")
	f.Add(uint8(0), "/v1/events/stream?replay=5", []byte(nil), uint8(1), "")
	f.Add(uint8(1), "/v1/permits", []byte(`{"agent":"a","breaker":"openai","gen":"1.2","epoch":1,"nonce":"n"}`), uint8(2), "application/json")
	f.Add(uint8(3), "/v1/breakers/openai", []byte(`{"reason":"gone"}`), uint8(3), "application/json")
	f.Add(uint8(0), "/v1/breakers?limit=2&cursor=openai", []byte(nil), uint8(1), "")
	f.Add(uint8(0), "/v1/rates?names=openai,a,b", []byte(nil), uint8(1), "")
	f.Add(uint8(0), "/v1/timelines?names=openai&limit=7", []byte(nil), uint8(1), "")
	f.Add(uint8(0), "/v1/breakers/openai/rates", []byte(nil), uint8(1), "")
	f.Add(uint8(0), "/v1/routes", []byte(nil), uint8(1), "")
	f.Add(uint8(1), "/v1/reports", []byte(`{"agent":"a","service":"web","breakers":[],"routes":[{"name":"chat","served":2,"fallback":1}]}`), uint8(2), "application/json")
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte, tok uint8, ctype string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t") {
			return // not a request line a client could send
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://fusebox"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		if tk := tokens[int(tok)%len(tokens)]; tk != "" {
			req.Header.Set("Authorization", "Bearer "+tk)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q %q: %d %s", req.Method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && req.Method != "HEAD" && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %q: error %d as %q", req.Method, path, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
