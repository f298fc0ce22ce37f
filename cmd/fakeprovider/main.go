// Command fakeprovider runs the fake LLM provider (package fakeprovider)
// for demos, the docker-compose cluster and the integration suites:
// OpenAI under /openai, Anthropic under /anthropic, Ollama under /ollama,
// and the fault-schedule control API under /_control.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fusebox-io/fusebox/fakeprovider"
	"github.com/fusebox-io/fusebox/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("FAKEPROVIDER_LISTEN")
	if def == "" {
		def = "127.0.0.1:9090"
	}
	listen := fs.String("listen", def, "listen address (env FAKEPROVIDER_LISTEN)")
	logCfg := logging.Flags(fs, getenv, "json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	base, err := logging.New(stderr, *logCfg)
	if err != nil {
		return err
	}
	logging.RouteLibraries(base)
	log := base.With().Str("component", "fakeprovider").Logger()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	fp := fakeprovider.New()
	srv := &http.Server{Handler: logRequests(log, fp), ReadHeaderTimeout: 5 * time.Second, ErrorLog: logging.HTTPErrorLog(base)}
	url := "http://" + ln.Addr().String()
	log.Info().Str("listen", url).Str("openai", url+"/openai/v1").Str("anthropic", url+"/anthropic").
		Str("ollama", url+"/ollama").Str("control", url+"/_control").Msg("fakeprovider starting")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fp.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	log.Info().Msg("fakeprovider stopped")
	return err
}
