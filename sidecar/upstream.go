package sidecar

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"time"
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
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &upstream{p: p, client: &http.Client{Transport: tr}}
}

// request builds the provider's request for a chat request.
func (u *upstream) request(ctx context.Context, r *chatRequest, model string) (*http.Request, error) {
	var body []byte
	var err error
	var url string
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch u.p.Kind {
	case KindAnthropic:
		body, err = toAnthropic(r, model, u.p.MaxTokens)
		url = u.p.BaseURL + "/v1/messages"
		h.Set("x-api-key", u.p.APIKey)
		h.Set("anthropic-version", "2023-06-01")
	case KindOllama:
		// Ollama's OpenAI-compatible endpoint: the same wire format and
		// error shape as OpenAI, so no translation and one stream relay.
		body, err = r.forOpenAI(model, KindOllama)
		url = u.p.BaseURL + "/v1/chat/completions"
	default:
		body, err = r.forOpenAI(model, u.p.Kind)
		url = u.p.BaseURL + "/chat/completions"
		if u.p.APIKey != "" {
			h.Set("Authorization", "Bearer "+u.p.APIKey)
		}
	}
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	if r.Stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	return req, nil
}
