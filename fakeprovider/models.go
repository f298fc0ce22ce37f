package fakeprovider

import (
	"net/http"
	"time"
)

// Models each provider lists at its /v1/models (Anthropic's in its own
// format).
var Models = map[string][]string{
	"openai":    {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"},
	"anthropic": {"claude-3-5-haiku-latest", "claude-sonnet-4-5"},
	"ollama":    {"llama3.2:1b", "nomic-embed-text"},
}

// models answers a provider's model list. A status, hang, reset or
// latency fault for every model applies to it, without using up the
// fault's Times; the calls are counted apart (ModelListCalls), not in
// Calls.
func (s *Server) models(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.modelCalls[name]++
		var f *Fault
		if cur := s.faults[name]; cur != nil && cur.Model == "" {
			copied := *cur
			f = &copied
		}
		s.mu.Unlock()
		if f != nil {
			if f.Latency > 0 && !s.wait(r, time.Duration(f.Latency)) {
				return
			}
			switch f.Kind {
			case FaultHang, FaultStall:
				s.wait(r, 0)
				return
			case FaultReset:
				resetConn(w)
				return
			case FaultStatus, FaultQuota:
				writeError(w, name, f, "")
				return
			}
		}
		if name == "anthropic" {
			data := []any{}
			for _, m := range Models[name] {
				data = append(data, map[string]any{"type": "model", "id": m, "display_name": m, "created_at": "2025-02-19T00:00:00Z"})
			}
			ms := Models[name]
			writeJSON(w, 200, map[string]any{"data": data, "has_more": false, "first_id": ms[0], "last_id": ms[len(ms)-1]})
			return
		}
		data := []any{}
		for _, m := range Models[name] {
			data = append(data, map[string]any{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"})
		}
		writeJSON(w, 200, map[string]any{"object": "list", "data": data})
	}
}

// ModelListCalls is how many times a provider's model list was asked for.
func (s *Server) ModelListCalls(provider string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modelCalls[provider]
}

// wait holds the request for d (0: until the client gives up or the
// server closes); false when it ended early.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var t <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		t = tm.C
	}
	select {
	case <-t:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}
