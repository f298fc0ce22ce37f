//go:build pprof

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// Built with -tags pprof (the proxy benchmark's profiles, bench/proxy.go),
// the agent serves net/http/pprof on FUSEBOX_PPROF_LISTEN, a listener of
// its own. Release builds have no such listener.
func init() {
	addr := os.Getenv("FUSEBOX_PPROF_LISTEN")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent: pprof:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { _ = http.Serve(ln, mux) }()
}
