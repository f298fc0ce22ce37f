package fakeprovider

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Providers the server speaks for.
var Providers = []string{"openai", "anthropic", "ollama"}

// Reply is the text every provider answers with (and streams word by word).
const Reply = "Hello from the fake provider. All systems nominal."

// Call is one request a provider received.
type Call struct {
	Provider string            `json:"provider"`
	Path     string            `json:"path"`
	Model    string            `json:"model"`
	Stream   bool              `json:"stream"`
	Headers  map[string]string `json:"headers"`
	Body     json.RawMessage   `json:"body"`
	At       time.Time         `json:"at"`
}

// Server is the fake provider.
type Server struct {
	mu         sync.Mutex
	faults     map[string]*Fault // guarded by mu
	calls      map[string]int64  // guarded by mu
	canaries   map[string]int64  // guarded by mu; calls that were canaries
	modelCalls map[string]int64  // guarded by mu; model list requests
	last       map[string]Call   // guarded by mu
	mux        *http.ServeMux
	done       chan struct{}
	once       sync.Once
}

// New returns a server with no faults.
func New() *Server {
	s := &Server{faults: map[string]*Fault{}, calls: map[string]int64{}, canaries: map[string]int64{}, modelCalls: map[string]int64{}, last: map[string]Call{}, mux: http.NewServeMux(), done: make(chan struct{})}
	s.mux.HandleFunc("POST /openai/v1/chat/completions", s.provider("openai", s.openAIChat))
	s.mux.HandleFunc("POST /openai/v1/embeddings", s.provider("openai", s.embeddings))
	s.mux.HandleFunc("POST /openai/v1/responses", s.provider("openai", s.responses))
	s.mux.HandleFunc("GET /openai/v1/models", s.models("openai"))
	s.mux.HandleFunc("POST /anthropic/v1/messages", s.provider("anthropic", s.anthropicMessages))
	s.mux.HandleFunc("GET /anthropic/v1/models", s.models("anthropic"))
	s.mux.HandleFunc("POST /ollama/api/chat", s.provider("ollama", s.ollamaChat))
	s.mux.HandleFunc("POST /ollama/v1/chat/completions", s.provider("ollama", s.openAIChat))
	s.mux.HandleFunc("POST /ollama/v1/embeddings", s.provider("ollama", s.embeddings))
	s.mux.HandleFunc("POST /ollama/v1/responses", s.provider("ollama", s.responses))
	s.mux.HandleFunc("GET /ollama/v1/models", s.models("ollama"))
	s.mux.HandleFunc("GET /ollama/api/tags", s.provider("ollama", s.ollamaTags))
	s.mux.HandleFunc("GET /ollama/api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]string{"version": "0.5.7"})
	})
	s.mux.HandleFunc("GET /_control/stats", s.stats)
	s.mux.HandleFunc("PUT /_control/faults/{provider}", s.setFault)
	s.mux.HandleFunc("DELETE /_control/faults/{provider}", s.clearFault)
	s.mux.HandleFunc("POST /_control/reset", s.reset)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close releases every hanging request.
func (s *Server) Close() { s.once.Do(func() { close(s.done) }) }

// SetFault schedules a fault for a provider (replacing any other).
func (s *Server) SetFault(provider string, f Fault) error {
	if !known(provider) {
		return fmt.Errorf("unknown provider %q", provider)
	}
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[provider] = &f
	return nil
}

// ClearFault heals a provider.
func (s *Server) ClearFault(provider string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, provider)
}

// Calls is how many requests a provider received.
func (s *Server) Calls(provider string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[provider]
}

// CanaryCalls is how many of a provider's requests were fusebox canaries
// (they carry X-Fusebox-Canary).
func (s *Server) CanaryCalls(provider string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.canaries[provider]
}

// LastCall is the last request a provider received.
func (s *Server) LastCall(provider string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.last[provider]
	return c, ok
}

// Reset clears every fault and counter.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*Fault{}
	s.calls = map[string]int64{}
	s.canaries = map[string]int64{}
	s.modelCalls = map[string]int64{}
	s.last = map[string]Call{}
}

func known(p string) bool {
	for _, k := range Providers {
		if k == p {
			return true
		}
	}
	return false
}

// request is what the provider endpoints read from a body.
type request struct {
	Model  string `json:"model"`
	Stream *bool  `json:"stream"`
}

type handler func(w http.ResponseWriter, r *http.Request, body []byte, req request, f *Fault)

// provider counts the call, takes the fault due, applies latency and the
// connection-level faults, and hands the rest to the endpoint.
func (s *Server) provider(name string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		var req request
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				badJSON(w, name, err)
				return
			}
		}
		stream := req.Stream != nil && *req.Stream
		if name == "ollama" && strings.HasPrefix(r.URL.Path, "/ollama/api/chat") && req.Stream == nil {
			stream = true // Ollama streams unless told not to
		}
		headers := map[string]string{}
		for _, k := range []string{"Authorization", "X-Api-Key", "Anthropic-Version", "Content-Type", "User-Agent"} {
			if v := r.Header.Get(k); v != "" {
				headers[k] = v
			}
		}
		s.mu.Lock()
		if r.Header.Get("X-Fusebox-Canary") != "" {
			s.canaries[name]++
		}
		s.calls[name]++
		s.last[name] = Call{Provider: name, Path: r.URL.Path, Model: req.Model, Stream: stream, Headers: headers, Body: body, At: time.Now()}
		var f *Fault
		if cur := s.faults[name]; cur != nil && (cur.Model == "" || cur.Model == req.Model) {
			copied := *cur
			f = &copied
			if cur.Times > 0 {
				cur.Times--
				if cur.Times == 0 {
					delete(s.faults, name)
				}
			}
		}
		s.mu.Unlock()

		if f != nil && f.Latency > 0 {
			select {
			case <-time.After(time.Duration(f.Latency)):
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
		if f != nil && f.Kind == FaultStall && !stream {
			f.Kind = FaultHang
		}
		if f != nil {
			switch f.Kind {
			case FaultHang:
				select {
				case <-r.Context().Done():
				case <-s.done:
				}
				return
			case FaultReset:
				resetConn(w)
				return
			case FaultStatus, FaultQuota:
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				if f.Reset > 0 {
					rateLimitHeaders(w, name, time.Duration(f.Reset))
				}
				key := ""
				if f.EchoKey {
					key = firstHeader(r, "Authorization", "X-Api-Key")
				}
				writeError(w, name, f, key)
				return
			case FaultLatency:
				f = nil
			case FaultExhausted:
				rateLimitHeaders(w, name, time.Duration(f.Reset))
				h(w, r, body, req, nil)
				return
			}
		}
		rateLimitHeaders(w, name, 0)
		h(w, r, body, req, f)
	}
}

func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// stall holds a stream open with nothing more in it until the client
// gives up.
func (s *Server) stall(w http.ResponseWriter, r *http.Request) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

// resetConn drops the connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// cutConn drops a connection mid-response, after flushing what was sent.
func cutConn(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler) // net/http closes the connection without finishing the body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls, canaries, models := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, p := range Providers {
		calls[p] = s.calls[p]
		canaries[p] = s.canaries[p]
		models[p] = s.modelCalls[p]
	}
	faults := map[string]Fault{}
	for p, f := range s.faults {
		faults[p] = *f
	}
	writeJSON(w, 200, map[string]any{"calls": calls, "canaries": canaries, "model_calls": models, "faults": faults, "last": s.last})
}

func (s *Server) setFault(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	var f Fault
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, 400, map[string]string{"error": "bad fault: " + err.Error()})
		return
	}
	if err := s.SetFault(p, f); err != nil {
		writeJSON(w, 400, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, 200, f)
}

func (s *Server) clearFault(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	if !known(p) {
		writeJSON(w, 404, map[string]string{"error": "unknown provider " + p})
		return
	}
	s.ClearFault(p)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) reset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
