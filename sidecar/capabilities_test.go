package sidecar_test

import (
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/fakeprovider"
)

// capYAML gives Ollama capabilities: no tools, vision or JSON mode, a
// 2,000-token window, and 1,000 for llama3.2:1b, the model it is sent.
func capYAML(fpURL, routes string) string {
	return strings.Replace(sidecarYAML(fpURL, routes), `    models: {"*": "llama3.2:1b"}`+"\n", `    models: {"*": "llama3.2:1b"}
    capabilities: {tools: false, vision: false, json_mode: false, context_window: 2000}
    model_capabilities: {"llama3.2:1b": {context_window: 1000}}
`, 1)
}

func TestSidecar_CapabilityAwareFallback(t *testing.T) {
	r := newRig(t, tablePolicy, 0, "")
	s := r.startSidecar(t, 0, capYAML(r.fpURL, `
routes:
  - name: only-ollama
    models: ["small"]
    chain: [ollama]
  - name: chat
    chain: [ollama, openai]
`))
	long := strings.Repeat("word ", 1000) // 5,000 bytes: 1,250 tokens by the estimate
	for _, tc := range []struct {
		name, body, from, skipped string
	}{
		{"fits: served by Ollama", hello, "ollama", ""},
		{"tools", toolChat(""), "openai", "ollama=tools"},
		{"a tool result in the conversation", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, "openai", "ollama=tools"},
		{"an image", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("A", 8000) + `"}}]}]}`, "openai", "ollama=vision"},
		{"JSON mode", `{"model":"gpt-4o-mini","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"JSON please"}]}`, "openai", "ollama=json_mode"},
		{"over the model's window (1,000), within the provider's (2,000)", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + long + `"}]}`, "openai", "ollama=context_window"},
		{"the output asked for counts too", `{"model":"gpt-4o-mini","max_completion_tokens":990,"messages":[{"role":"user","content":"hi"}]}`, "openai", "ollama=context_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.fp.Reset()
			a := chat(t, s.url, tc.body)
			if a.status != 200 || a.provider != tc.from || a.skipped() != tc.skipped {
				t.Fatalf("%d from %q skipped %q, want %q and %q: %s", a.status, a.provider, a.skipped(), tc.from, tc.skipped, a.body)
			}
			if tc.skipped != "" && r.fp.Calls("ollama") != 0 {
				t.Fatal("Ollama was called")
			}
		})
	}
	t.Run("an image's base64 data is not counted as text", func(t *testing.T) {
		r.fp.Reset()
		y := strings.Replace(capYAML(r.fpURL, "routes:\n  - name: chat\n    chain: [ollama, openai]\n"), "vision: false", "vision: true", 1)
		s2 := r.startSidecar(t, 1, strings.Replace(y, `{"llama3.2:1b": {context_window: 1000}}`, `{"llama3.2:1b": {context_window: 1500}}`, 1))
		img := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("A", 8000) + `"}}]}]}`
		if a := chat(t, s2.url, img); a.provider != "ollama" {
			t.Fatalf("an 8 KB image (1,000 tokens by the estimate, not 2,000; the window 1,500) went to %q, skipped %q", a.provider, a.skipped())
		}
	})
	t.Run("no provider can serve it: a 400 that says why, no provider called", func(t *testing.T) {
		r.fp.Reset()
		a := chat(t, s.url, strings.Replace(toolChat(""), "gpt-4o-mini", "small", 1))
		if a.status != 400 || !strings.Contains(a.body, "fusebox_no_capable_provider") || !strings.Contains(a.body, "ollama=tools") || a.skipped() != "ollama=tools" {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if r.fp.Calls("ollama")+r.fp.Calls("openai") != 0 {
			t.Fatal("a provider was called")
		}
	})
	t.Run("Messages requests too", func(t *testing.T) {
		r.fp.Reset()
		a := messages(t, s.url, messagesBody(`"tools":[`+anthropicWeatherTool+`],`))
		if a.status != 200 || a.provider != "openai" || a.skipped() != "ollama=tools" {
			t.Fatalf("%d from %q skipped %q", a.status, a.provider, a.skipped())
		}
	})
}

func TestSidecar_ContextWindowFallbacks(t *testing.T) {
	r := newRig(t, tablePolicy, 0, "")
	y := sidecarYAML(r.fpURL, `
routes:
  - name: long
    models: ["gpt-4o"]
    chain: [openai, ollama]
    context_window_fallbacks: [anthropic]
  - name: smaller
    models: ["o3"]
    chain: [openai]
    context_window_fallbacks: [ollama, anthropic]
  - name: chat
    chain: [openai, ollama]
`)
	y = strings.Replace(y, "api_key_env: OPENAI_API_KEY\n", "api_key_env: OPENAI_API_KEY\n    capabilities: {context_window: 128000}\n", 1)
	y = strings.Replace(y, `    models: {"*": "llama3.2:1b"}`+"\n", `    models: {"*": "llama3.2:1b"}`+"\n    capabilities: {context_window: 8000}\n", 1)
	s := r.startSidecar(t, 0, y)
	ctx400 := fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 400}

	t.Run("a context-length 400 moves on to the larger-context fallback, counting against no breaker", func(t *testing.T) {
		r.fp.Reset()
		resetBreakers(t, r, s.agent)
		if err := r.fp.SetFault("openai", ctx400); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", "gpt-4o", 1))
		if a.status != 200 || a.provider != "anthropic" || a.fallback != "true" || r.fp.Calls("ollama") != 0 {
			t.Fatalf("%d from %q (ollama called %d times): %s", a.status, a.provider, r.fp.Calls("ollama"), a.body)
		}
		expectReported(t, r, s.agent, "openai", 0)
	})
	t.Run("a fallback whose window is no larger is passed over; with none left the 400 is the caller's", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", ctx400); err != nil {
			t.Fatal(err)
		}
		if err := r.fp.SetFault("anthropic", fakeprovider.Fault{Kind: fakeprovider.FaultStatus, Status: 400}); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, strings.Replace(hello, "gpt-4o-mini", "o3", 1))
		// Ollama (8,000) is under OpenAI's 128,000: skipped; Anthropic
		// declares nothing: tried, and its own 400 is the answer.
		if a.status != 400 || a.provider != "anthropic" || a.skipped() != "ollama=context_window" || r.fp.Calls("ollama") != 0 || !strings.Contains(a.body, "prompt is too long") {
			t.Fatalf("%d from %q skipped %q: %s", a.status, a.provider, a.skipped(), a.body)
		}
	})
	t.Run("without fallbacks the 400 goes to the caller", func(t *testing.T) {
		r.fp.Reset()
		if err := r.fp.SetFault("openai", ctx400); err != nil {
			t.Fatal(err)
		}
		a := chat(t, s.url, hello)
		if a.status != 400 || a.provider != "openai" || !strings.Contains(a.body, "context_length_exceeded") || r.fp.Calls("ollama") != 0 {
			t.Fatalf("%d from %q: %s", a.status, a.provider, a.body)
		}
	})
}
