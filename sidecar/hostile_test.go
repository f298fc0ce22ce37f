package sidecar_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzSidecar_HostileBodies: whatever a client sends to any endpoint, the
// sidecar answers (no panic, no dropped connection) and never with a 500.
func FuzzSidecar_HostileBodies(f *testing.F) {
	for _, s := range []string{
		hello, helloStream, toolChat(""), messagesBody(`"stream":true,`), messagesBody(`"tools":[` + anthropicWeatherTool + `],`),
		`{"model":"text-embedding-3-small","input":["a",[1,2],{"x":1}]}`,
		`{"model":"gpt-4o-mini","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:,"}]}],"stream":true}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"tool","tool_call_id":7,"content":{"a":[]}}],"tools":[{"type":"function","function":{"name":""}}]}`,
		`{"model":"m","max_tokens":1e309,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"\u0000","content":[{"type":"image","source":{"type":"base64","media_type":"image/x","data":""}}]}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat(`\"[{`, 100) + `"}],"stop":[""]}`,
		`{"model":null}`, `[]`, `{`, "",
	} {
		for i := range 4 {
			f.Add(s, uint8(i))
		}
	}
	r := newRig(f, tablePolicy, 1, endpointRoutes)
	s := r.sidecars[0]
	paths := []string{"/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/responses"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		path := paths[int(which)%len(paths)]
		req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("anthropic-version", anthropicVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %q: no answer: %v", path, body, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s %q: the answer was cut: %v", path, body, err)
		}
		if resp.StatusCode == 500 {
			t.Fatalf("%s %q: 500 %s", path, body, b)
		}
	})
}
