package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

var seq atomic.Int64

func words() []string {
	ws := strings.SplitAfter(Reply, " ")
	return ws
}

// promptTokens is a rough count of the words a request sent.
func promptTokens(body []byte) int {
	var r struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		System json.RawMessage `json:"system"`
	}
	_ = json.Unmarshal(body, &r)
	n := len(strings.Fields(string(r.System)))
	for _, m := range r.Messages {
		n += len(strings.Fields(string(m.Content)))
	}
	return max(n, 1)
}

func completionTokens() int { return len(words()) }

func sse(w http.ResponseWriter, event string, v any) {
	b, _ := json.Marshal(v)
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// openAIChat answers /chat/completions (OpenAI, and Ollama's compatible
// endpoint): text, or tool calls when the request offers tools.
func (s *Server) openAIChat(w http.ResponseWriter, r *http.Request, body []byte, req request, f *Fault) {
	t, invalid := openAITurn(body)
	if invalid != "" {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": invalid, "type": "invalid_request_error", "param": "messages", "code": nil}})
		return
	}
	id := fmt.Sprintf("chatcmpl-fake%d", seq.Add(1))
	created := time.Now().Unix()
	model := req.Model
	usage := map[string]int{"prompt_tokens": promptTokens(body), "completion_tokens": completionTokens(), "total_tokens": promptTokens(body) + completionTokens()}
	finish := "stop"
	if len(t.calls) > 0 {
		finish = "tool_calls"
	}
	if req.Stream == nil || !*req.Stream {
		msg := map[string]any{"role": "assistant", "content": t.text, "refusal": nil}
		if len(t.calls) > 0 {
			var calls []any
			for _, c := range t.calls {
				calls = append(calls, map[string]any{"id": c.id, "type": "function", "function": map[string]any{"name": c.name, "arguments": string(c.args)}})
			}
			msg["content"], msg["tool_calls"] = nil, calls
		}
		writeJSON(w, 200, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish, "logprobs": nil}},
			"usage":   usage,
		})
		return
	}
	var opts struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &opts)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": nil}}}
	}
	// Stream faults strike before chunk number CutAfter (0: before any).
	sent := 0
	fault := func() bool {
		if f == nil || sent != f.CutAfter {
			sent++
			return false
		}
		switch f.Kind {
		case FaultStreamError:
			sse(w, "", map[string]any{"error": map[string]any{"message": "The server had an error while processing your request." + echoedKey(r, f),
				"type": "server_error", "param": nil, "code": nil}})
		case FaultStall:
			s.stall(w, r)
		default:
			cutConn(w)
		}
		return true
	}
	if fault() {
		return
	}
	if len(t.calls) == 0 {
		sse(w, "", chunk(map[string]any{"role": "assistant", "content": ""}, nil))
		for _, word := range strings.SplitAfter(t.text, " ") {
			if fault() {
				return
			}
			sse(w, "", chunk(map[string]any{"content": word}, nil))
		}
	} else {
		sse(w, "", chunk(map[string]any{"role": "assistant", "content": nil, "refusal": nil}, nil))
		for i, c := range t.calls {
			if fault() {
				return
			}
			sse(w, "", chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.id, "type": "function",
				"function": map[string]any{"name": c.name, "arguments": ""}}}}, nil))
			for _, frag := range fragments(string(c.args)) {
				if fault() {
					return
				}
				sse(w, "", chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}}, nil))
			}
		}
	}
	sse(w, "", chunk(map[string]any{}, finish))
	if opts.StreamOptions.IncludeUsage {
		sse(w, "", map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// anthropicMessages answers /v1/messages: text, or a text block and
// tool_use blocks when the request offers tools.
func (s *Server) anthropicMessages(w http.ResponseWriter, r *http.Request, body []byte, req request, f *Fault) {
	if r.Header.Get("anthropic-version") == "" {
		writeJSON(w, 400, map[string]any{"type": "error", "error": map[string]string{"type": "invalid_request_error", "message": "anthropic-version: header is required"}})
		return
	}
	var mt struct {
		MaxTokens *int `json:"max_tokens"`
	}
	_ = json.Unmarshal(body, &mt)
	if mt.MaxTokens == nil {
		writeJSON(w, 400, map[string]any{"type": "error", "error": map[string]string{"type": "invalid_request_error", "message": "max_tokens: Field required"}})
		return
	}
	t, invalid := anthropicTurn(body)
	if invalid != "" {
		writeJSON(w, 400, map[string]any{"type": "error", "error": map[string]string{"type": "invalid_request_error", "message": invalid}})
		return
	}
	id := fmt.Sprintf("msg_fake%d", seq.Add(1))
	in, out := promptTokens(body), completionTokens()
	stop := "end_turn"
	if len(t.calls) > 0 {
		stop = "tool_use"
	}
	if req.Stream == nil || !*req.Stream {
		content := []any{map[string]string{"type": "text", "text": t.text}}
		for _, c := range t.calls {
			content = append(content, map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args})
		}
		writeJSON(w, 200, map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": req.Model,
			"content":     content,
			"stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": in, "output_tokens": out},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	sent := 0
	fault := func() bool {
		if f == nil || sent != f.CutAfter {
			sent++
			return false
		}
		switch f.Kind {
		case FaultStreamError:
			sse(w, "error", map[string]any{"type": "error", "error": map[string]string{"type": "overloaded_error", "message": "Overloaded" + echoedKey(r, f)}})
		case FaultStall:
			s.stall(w, r)
		default:
			cutConn(w)
		}
		return true
	}
	if fault() {
		return
	}
	sse(w, "message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]int{"input_tokens": in, "output_tokens": 1}}})
	sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
	sse(w, "ping", map[string]string{"type": "ping"})
	for _, word := range strings.SplitAfter(t.text, " ") {
		if fault() {
			return
		}
		sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": word}})
	}
	sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	for i, c := range t.calls {
		if fault() {
			return
		}
		sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": i + 1,
			"content_block": map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": map[string]any{}}})
		for _, frag := range fragments(string(c.args)) {
			if fault() {
				return
			}
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": i + 1, "delta": map[string]string{"type": "input_json_delta", "partial_json": frag}})
		}
		sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": i + 1})
	}
	sse(w, "message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int{"output_tokens": out}})
	sse(w, "message_stop", map[string]string{"type": "message_stop"})
}

// ollamaChat answers Ollama's native /api/chat: NDJSON unless
// "stream": false.
func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request, body []byte, req request, f *Fault) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if req.Stream != nil && !*req.Stream {
		writeJSON(w, 200, map[string]any{"model": req.Model, "created_at": now, "message": map[string]string{"role": "assistant", "content": Reply},
			"done": true, "done_reason": "stop", "prompt_eval_count": promptTokens(body), "eval_count": completionTokens()})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	enc := json.NewEncoder(w)
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	for i, word := range words() {
		if f != nil && i == f.CutAfter {
			switch f.Kind {
			case FaultStreamError:
				_ = enc.Encode(map[string]string{"error": "llama runner process has terminated: signal: killed"})
				return
			case FaultStall:
				s.stall(w, r)
				return
			}
			cutConn(w)
		}
		_ = enc.Encode(map[string]any{"model": req.Model, "created_at": now, "message": map[string]string{"role": "assistant", "content": word}, "done": false})
		flush()
	}
	_ = enc.Encode(map[string]any{"model": req.Model, "created_at": now, "message": map[string]string{"role": "assistant", "content": ""},
		"done": true, "done_reason": "stop", "prompt_eval_count": promptTokens(body), "eval_count": completionTokens()})
}

func (s *Server) ollamaTags(w http.ResponseWriter, _ *http.Request, _ []byte, _ request, _ *Fault) {
	writeJSON(w, 200, map[string]any{"models": []any{map[string]any{"name": "llama3.2:1b", "model": "llama3.2:1b", "size": 1321098329,
		"details": map[string]string{"family": "llama", "parameter_size": "1.2B"}}}})
}

// echoedKey is what a stream_error fault with EchoKey adds to its
// message: the key the request carried.
func echoedKey(r *http.Request, f *Fault) string {
	if !f.EchoKey {
		return ""
	}
	return " (key: " + firstHeader(r, "Authorization", "X-Api-Key") + ")"
}
