package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/fusebox-io/fusebox/provider"
)

// upstream calls one provider with its own pooled transport and timeouts.
type upstream struct {
	p      *Provider
	client *http.Client
}

func newUpstream(p *Provider) *upstream {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: p.Connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   p.Connect,
		ResponseHeaderTimeout: p.FirstByte,
		// A burst of calls leaves up to 512 connections to the provider
		// open for the next (nginx's keepalive in the proxy benchmark):
		// fewer, and every burst beyond them is dialled (and at a real
		// provider, handshaken) again. Idle ones close after 90 s.
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &upstream{p: p, client: &http.Client{Transport: tr}}
}

// conversion is how a provider's answer becomes the client's.
type conversion uint8

const (
	// convPass: the provider speaks the client's format.
	convPass conversion = iota
	// convFromAnthropic: a Chat Completions client, an Anthropic provider.
	convFromAnthropic
	// convFromOpenAI: a Messages client, an OpenAI-format provider.
	convFromOpenAI
)

// outbound is one request built for one provider: sent as is on every
// try (retries and all).
type outbound struct {
	url    string
	header http.Header
	body   []byte
	conv   conversion
	// includeUsage: the client asked for usage at the end of its stream.
	includeUsage bool
	// dropped: fields the translation left out, which cannot change the
	// answer (seed, store, cache hints…), logged.
	dropped []string
}

// request is the HTTP request for one try. Its header is the outbound's
// own, which the transport only reads, or a copy when the try adds to it
// (own: tracing's traceparent).
func (o *outbound) request(ctx context.Context, own bool) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(o.body))
	if err != nil {
		return nil, err
	}
	req.Header = o.header
	if own {
		req.Header = o.header.Clone()
	}
	return req, nil
}

// build makes the provider's request for r and the provider's model. A
// translation that fails is a *provider.InvalidError (the request is not
// well-formed: a 400 for the caller) or a *provider.UntranslatableError
// (this provider cannot be asked faithfully: skip it).
func (u *upstream) build(r *request, model string) (*outbound, error) {
	p := u.p
	o := &outbound{header: http.Header{}, includeUsage: r.includeUsage}
	o.header.Set("Content-Type", "application/json")
	if r.stream {
		o.header.Set("Accept", "text/event-stream")
	}
	openAIBase := p.BaseURL // openai, openai-compatible: the base URL ends in /v1
	if p.Kind == KindOllama {
		openAIBase = p.BaseURL + "/v1" // Ollama's OpenAI-compatible endpoints
	}
	if p.Kind != KindAnthropic && p.APIKey != "" {
		o.header.Set("Authorization", "Bearer "+p.APIKey)
	}
	switch {
	case p.Kind == KindAnthropic:
		o.url = p.BaseURL + "/v1/messages"
		o.header.Set("x-api-key", p.APIKey)
		o.header.Set("anthropic-version", provider.AnthropicVersion)
		switch r.api {
		case APIChat:
			tr, err := provider.OpenAIToAnthropicRequest(r.body, provider.AnthropicOptions{Model: model, MaxTokens: int64(p.MaxTokens)})
			if err != nil {
				return nil, err
			}
			o.body, o.conv, o.includeUsage, o.dropped = tr.Body, convFromAnthropic, tr.IncludeUsage, tr.Dropped
		case APIMessages:
			o.body = r.withModel(model, nil)
			o.header.Set("anthropic-version", r.version)
			if r.beta != "" {
				o.header.Set("anthropic-beta", r.beta)
			}
		default: // refused by the config
			return nil, &provider.UntranslatableError{Field: r.api.Path(), Reason: "Anthropic has no such API"}
		}
	case r.api == APIMessages:
		o.url = openAIBase + "/chat/completions"
		tr, err := provider.AnthropicToOpenAIRequest(r.body, provider.OpenAIOptions{Model: model, LegacyMaxTokens: p.Kind == KindOllama})
		if err != nil {
			return nil, err
		}
		o.body, o.conv, o.dropped = tr.Body, convFromOpenAI, tr.Dropped
	case r.api == APIChat:
		o.url = openAIBase + "/chat/completions"
		var set map[string]json.RawMessage
		if v, ok := r.get("max_completion_tokens"); ok && p.Kind == KindOllama {
			// Ollama takes max_tokens, not max_completion_tokens.
			set = map[string]json.RawMessage{"max_completion_tokens": nil, "max_tokens": v}
		}
		o.body = r.withModel(model, set)
	case r.api == APIEmbeddings:
		o.url = openAIBase + "/embeddings"
		o.body = r.withModel(model, nil)
	case r.api == APIResponses:
		o.url = openAIBase + "/responses"
		o.body = r.withModel(model, nil)
	}
	return o, nil
}
