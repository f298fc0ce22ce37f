// Command goproxy is the proxy benchmark's floor for a Go proxy: Go's own
// reverse proxy (net/http/httputil), with the sidecar's connection pool
// and nothing else (no breaker, no body reading, no metrics), in front of
// one upstream. What the sidecar spends beyond it is fusebox's; what it
// spends beyond nginx is net/http's.
//
//	goproxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:9090
//
// It logs one JSON line with its address ({"listen":"http://…"}) on
// stderr once it accepts connections.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "the upstream's base URL")
	flag.Parse()
	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}

func run(listen, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return fmt.Errorf("-upstream %q: want a base URL such as http://127.0.0.1:9090", upstream)
	}
	// The sidecar's pool (sidecar/upstream.go), so the two differ only
	// in what the sidecar does per request.
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: tr,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	line, err := json.Marshal(map[string]string{"listen": "http://" + ln.Addr().String()})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, string(line))
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
