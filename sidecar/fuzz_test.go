package sidecar

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/fusebox-io/fusebox/provider"
)

// FuzzRequest: any body either parses into a request that translates (or
// is refused with an error), or is refused; nothing panics.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}],"stop":7}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"system","content":null}],"max_tokens":-1,"temperature":"hot"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseChatRequest(body)
		if err != nil {
			return
		}
		_, _ = toAnthropic(r, "c", 100)
		_, _ = r.forOpenAI("m", KindOllama)
	})
}

// FuzzProviderAnswers: whatever a provider sends, as a body or as a
// stream, the sidecar reads it without panicking.
func FuzzProviderAnswers(f *testing.F) {
	f.Add([]byte(`{"id":"m","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"}`))
	f.Add([]byte("event: message_start\ndata: {\"message\":{}}\n\nevent: message_stop\ndata: {}\n\n"))
	f.Add([]byte("data: {\"error\":{\"code\":502}}\n\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = fromAnthropic(b)
		_ = provider.ParseError(b)
		s := &anthropicStream{includeUsage: true}
		rd := bufio.NewReader(bytes.NewReader(b))
		for range 100 {
			ev, data, err := readSSE(rd)
			if err != nil {
				return
			}
			if data != nil {
				if _, _, err := s.event(ev, data); err != nil {
					return
				}
			}
		}
	})
}
