package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// InstallHint says how to get redis-server on this project's machines.
const InstallHint = "redis-server not found in PATH: install it with `apt-get install -y redis-server` (or run `make test`, which does)"

// Server is a redis-server process owned by one test. Its methods are
// safe for concurrent use.
type Server struct {
	Addr string
	dir  string
	port int
	args []string
	tls  bool // serve TLS only, on Addr

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil when stopped
}

// Option shapes a server.
type Option func(*Server)

// WithArgs passes extra redis-server arguments, e.g. "--appendonly", "yes".
func WithArgs(args ...string) Option {
	return func(s *Server) { s.args = append(s.args, args...) }
}

// WithTLS serves TLS only (no plain port) with the given PEM files.
// Clients are not asked for certificates.
func WithTLS(certFile, keyFile, caFile string) Option {
	return func(s *Server) {
		s.tls = true
		s.args = append(s.args, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
			"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no")
	}
}

// Start runs redis-server on a free loopback port until the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal(InstallHint)
	}
	s := &Server{dir: tb.TempDir()}
	for _, o := range opts {
		o(s)
	}
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			tb.Fatalf("redistest: free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if lastErr = s.start(bin); lastErr == nil {
			tb.Cleanup(s.stop)
			return s
		}
	}
	tb.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Client returns a client closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (SIGKILL: no shutdown save).
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.stop()
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal(InstallHint)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.start(bin)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: restart on %s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
}

func (s *Server) start(bin string) error {
	ports := []string{"--port", strconv.Itoa(s.port)}
	if s.tls {
		ports = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port)}
	}
	args := append(append(ports,
		"--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
	), s.args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	o := &redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}
	if s.tls {
		o.TLSConfig = &tls.Config{InsecureSkipVerify: true} // a readiness check, not a test of trust
	}
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("exited (%v): %s", err, tail(log))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		var reply redis.Error // e.g. NOAUTH: the server is up and answering
		if err == nil || errors.As(err, &reply) {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			go func() { <-exited }()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("no PING answer within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	// Wait until the port is free again so a restart can take it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return string(b)
}

// Backend is a Redis server a scenario runs on.
type Backend struct {
	Name   string
	Addr   string
	Client redis.UniversalClient
	// Mini is set for the embedded server; nil for redis-server.
	Mini *miniredis.Miniredis
	// Cluster is set for a Redis Cluster (ClusterBackend); Client is then
	// a *redis.ClusterClient.
	Cluster *Cluster
}

// Mini runs the embedded server that `coordinator --dev` uses.
func Mini(tb testing.TB) Backend {
	tb.Helper()
	m := miniredis.RunT(tb)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "miniredis", Addr: m.Addr(), Client: c, Mini: m}
}

// Real runs a redis-server.
func Real(tb testing.TB) Backend {
	tb.Helper()
	s := Start(tb)
	return Backend{Name: "redis-server", Addr: s.Addr, Client: s.Client(tb)}
}

// Each runs fn as a subtest on a real redis-server and on the embedded
// server, so both are proven to behave the same.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("redis-server", func(t *testing.T) { fn(t, Real(t)) })
	t.Run("miniredis", func(t *testing.T) { fn(t, Mini(t)) })
}
