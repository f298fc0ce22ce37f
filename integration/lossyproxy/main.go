// Command lossyproxy stands between agents and a coordinator and loses
// answers: it forwards each outcome report that carries a failure, lets
// the coordinator apply it and read its answer, then hangs up on the
// agent without a byte. Everything else passes through. The container
// suites use it to prove that a report whose answer was lost, resent by
// the agent to the next coordinator, counts once.
//
//	LOSSY_TARGET   the coordinator, e.g. http://coordinator-0:8080
//	LOSSY_LISTEN   default 0.0.0.0:8080
//
// GET /_lossy/stats answers {"dropped": n, "forwarded": m}; /healthz is
// its own.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	target, err := url.Parse(os.Getenv("LOSSY_TARGET"))
	if err != nil || target.Host == "" {
		fmt.Fprintln(os.Stderr, "lossyproxy: LOSSY_TARGET must be a URL, e.g. http://coordinator-0:8080")
		os.Exit(2)
	}
	listen := os.Getenv("LOSSY_LISTEN")
	if listen == "" {
		listen = "0.0.0.0:8080"
	}
	var dropped, forwarded atomic.Int64
	pass := httputil.NewSingleHostReverseProxy(target)
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /_lossy/stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]int64{"dropped": dropped.Load(), "forwarded": forwarded.Load()})
	})
	mux.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !bytes.Contains(body, []byte(`"fail":`)) {
			forwarded.Add(1)
			r.Body = io.NopCloser(bytes.NewReader(body))
			pass.ServeHTTP(w, r)
			return
		}
		req, _ := http.NewRequest(http.MethodPost, target.String()+"/v1/reports", bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // applied: the coordinator answered
			resp.Body.Close()
		}
		dropped.Add(1)
		// The answer is lost: hang up without a byte.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	})
	mux.Handle("/", pass)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "lossyproxy:", err)
		os.Exit(1)
	}
}
