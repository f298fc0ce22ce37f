package fakeprovider

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// responses answers OpenAI's Responses API, POST /v1/responses (OpenAI,
// and Ollama's compatible endpoint), streaming and not: an output message
// with the Reply text.
func (s *Server) responses(w http.ResponseWriter, r *http.Request, body []byte, req request, f *Fault) {
	id := fmt.Sprintf("resp_fake%d", seq.Add(1))
	msgID := fmt.Sprintf("msg_fake%d", seq.Add(1))
	created := time.Now().Unix()
	in, out := promptTokens(body), completionTokens()
	response := func(status string, text string) map[string]any {
		output := []any{}
		if status == "completed" {
			output = append(output, map[string]any{"type": "message", "id": msgID, "status": "completed", "role": "assistant",
				"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}}})
		}
		res := map[string]any{"id": id, "object": "response", "created_at": created, "status": status, "model": req.Model,
			"output": output, "error": nil, "incomplete_details": nil}
		if status == "completed" {
			res["usage"] = map[string]int{"input_tokens": in, "output_tokens": out, "total_tokens": in + out}
		}
		return res
	}
	if req.Stream == nil || !*req.Stream {
		writeJSON(w, 200, response("completed", Reply))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	n := 0
	ev := func(typ string, v map[string]any) {
		v["type"], v["sequence_number"] = typ, n
		n++
		sse(w, typ, v)
	}
	sent := 0
	fault := func() bool {
		if f == nil || sent != f.CutAfter {
			sent++
			return false
		}
		switch f.Kind {
		case FaultStreamError:
			ev("error", map[string]any{"code": "server_error", "message": "The server had an error while processing your request.", "param": nil})
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
	ev("response.created", map[string]any{"response": response("in_progress", "")})
	ev("response.in_progress", map[string]any{"response": response("in_progress", "")})
	ev("response.output_item.added", map[string]any{"output_index": 0, "item": map[string]any{"type": "message", "id": msgID, "status": "in_progress", "role": "assistant", "content": []any{}}})
	ev("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
	for _, word := range strings.SplitAfter(Reply, " ") {
		if fault() {
			return
		}
		ev("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": word})
	}
	ev("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": Reply})
	ev("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": map[string]any{"type": "output_text", "text": Reply, "annotations": []any{}}})
	ev("response.output_item.done", map[string]any{"output_index": 0, "item": response("completed", Reply)["output"].([]any)[0]})
	ev("response.completed", map[string]any{"response": response("completed", Reply)})
}
