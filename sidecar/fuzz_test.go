package sidecar

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/fusebox-io/fusebox/provider"
)

var fuzzProviders = []*Provider{
	{Name: "openai", Kind: KindOpenAI, BaseURL: "http://x/v1", APIKey: "k", MaxTokens: 100},
	{Name: "compat", Kind: KindOpenAICompatible, BaseURL: "http://x/v1"},
	{Name: "anthropic", Kind: KindAnthropic, BaseURL: "http://x", APIKey: "k", MaxTokens: 100},
	{Name: "ollama", Kind: KindOllama, BaseURL: "http://x"},
}

// FuzzRequest: any body, on any API, is refused with a requestError, or
// parses into a request that every provider either gets built for or
// turns down with provider's InvalidError or UntranslatableError; its
// needs are read without panicking.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"stop":7}`,
		`{"model":"m","messages":[{"role":"system","content":null}],"max_tokens":-1,"temperature":"hot"}`,
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x"}]}],"tools":[{"name":"a","input_schema":{}}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{"}}]},{"role":"tool","tool_call_id":"c","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"}}`,
		`{"model":"m","input":["a",[1,2]],"encoding_format":"base64"}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:x"}]}],"previous_response_id":"r","text":{"format":{"type":"json_schema"}}}`,
		`[[[[[[[[[[]]]]]]]]]]`,
	} {
		for i := range APIs {
			f.Add([]byte(s), uint8(i))
		}
	}
	ups := map[*Provider]*upstream{}
	for _, p := range fuzzProviders {
		ups[p] = &upstream{p: p}
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		api := APIs[int(which)%len(APIs)]
		h := http.Header{"Anthropic-Version": {"2023-06-01"}}
		r, err := parseRequest(api, body, h)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("a refusal that is not a requestError: %v", err)
			}
			return
		}
		_ = r.scanNeeds()
		for p, u := range ups {
			if p.Kind.serves(api) != nil {
				continue
			}
			o, err := u.build(r, "model-x")
			if err != nil {
				if !errors.Is(err, provider.ErrInvalid) && !errors.Is(err, provider.ErrUntranslatable) {
					t.Fatalf("%s: %v", p.Name, err)
				}
				continue
			}
			if _, err := o.request(t.Context(), true); err != nil {
				t.Fatalf("%s: the built request: %v", p.Name, err)
			}
		}
	})
}

// FuzzProviderAnswers: whatever a provider sends, as a body, an error or
// a stream, every reader of it returns without panicking.
func FuzzProviderAnswers(f *testing.F) {
	f.Add([]byte(`{"id":"m","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"}`))
	f.Add([]byte(`{"id":"c","object":"chat.completion","choices":[{"message":{"content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`))
	f.Add([]byte("event: message_start\ndata: {\"message\":{\"id\":\"m\"}}\n\nevent: content_block_start\ndata: {\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n\nevent: message_stop\ndata: {}\n\n"))
	f.Add([]byte("data: {\"error\":{\"code\":502}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("event: response.failed\ndata: {\"response\":{\"error\":{\"code\":\"server_error\"}}}\n\n"))
	f.Add([]byte(`{"error":{"message":"maximum context length","code":"context_length_exceeded"}}`))
	p := fuzzProviders[0]
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []conversion{convPass, convFromAnthropic, convFromOpenAI} {
			_, _ = convertBody(c, b)
		}
		_ = classifyStatus(p, 400, b, 0)
		_ = provider.IsContextLengthError(b)
		for _, api := range APIs {
			_ = clientErrorBody(api, fuzzProviders[2], 529, b)
		}
		relays := map[API]relay{APIChat: &chatPass{}, APIMessages: &anthropicPass{}, APIResponses: &responsesPass{}}
		relays["chat-from-anthropic"] = &fromAnthropic{s: provider.NewAnthropicToOpenAIStream(provider.StreamOptions{IncludeUsage: true})}
		relays["messages-from-openai"] = &fromOpenAI{s: provider.NewOpenAIToAnthropicStream()}
		for api, rl := range relays {
			rd := bufio.NewReader(bytes.NewReader(b))
			for range 100 {
				ev, err := provider.ReadEvent(rd)
				if err != nil {
					_ = rl.end()
					break
				}
				evs, done, err := rl.next(ev)
				_ = anyToken(api, evs)
				if err != nil {
					_, _ = streamOutcome("x", err)
					_ = streamErrorEvent(api, "x", err)
					break
				}
				if done {
					break
				}
			}
		}
	})
}
