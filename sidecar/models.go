package sidecar

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fusebox-io/fusebox/provider"
)

// What GET /v1/models asks of each provider: its own list, within
// modelListTimeout, kept for modelListTTL.
const (
	modelListTimeout = 2 * time.Second
	modelListTTL     = time.Minute
	maxModelList     = 4 << 20
)

// modelLists answers GET /v1/models: the models the routes name, merged
// with what each provider that passes requested models through lists
// itself (its /v1/models), asked with a short timeout and cached; a
// provider that does not answer gives its last list, or only the models
// the file names.
type modelLists struct {
	s     *Server
	group singleflight.Group
	mu    sync.Mutex
	lists map[string]modelList // guarded by mu; by provider
}

type modelList struct {
	ids []string
	at  time.Time
}

func newModelLists(s *Server) *modelLists { return &modelLists{s: s, lists: map[string]modelList{}} }

// listModels serves GET /v1/models, in OpenAI's format, or in Anthropic's
// when the request carries anthropic-version (Anthropic's SDKs list
// models at the same path).
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	ids, owner := s.models.merged(r.Context())
	if r.Header.Get("anthropic-version") != "" {
		data := make([]map[string]any, 0, len(ids))
		for _, id := range ids {
			data = append(data, map[string]any{"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})
		}
		body := map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil}
		if len(ids) > 0 {
			body["first_id"], body["last_id"] = ids[0], ids[len(ids)-1]
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	data := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, map[string]any{"id": id, "object": "model", "created": 0, "owned_by": owner[id]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// merged is every model a client may ask for, sorted, with who answers
// it first: "fusebox:<route>" for the models the file names, the
// provider's name for those only the provider listed.
func (m *modelLists) merged(ctx context.Context) ([]string, map[string]string) {
	owner := map[string]string{}
	var passing []*Provider
	for _, r := range m.s.cfg.Routes {
		for _, id := range r.Models {
			if _, ok := owner[id]; !ok && id != "*" {
				owner[id] = "fusebox:" + r.Name
			}
		}
		for _, ps := range [][]*Provider{r.Chain, r.MessagesChain, r.ContextWindowFallbacks} {
			for _, p := range ps {
				for id := range p.Models {
					if _, ok := owner[id]; !ok && id != "*" {
						owner[id] = "fusebox:" + r.Name
					}
				}
				if to, ok := p.Models["*"]; ok && (to == "" || to == "*") && !slices.Contains(passing, p) {
					passing = append(passing, p)
				}
			}
		}
	}
	lists := make([][]string, len(passing))
	var wg sync.WaitGroup
	for i, p := range passing {
		wg.Go(func() { lists[i] = m.list(ctx, p) })
	}
	wg.Wait()
	for i, p := range passing {
		for _, id := range lists[i] {
			if _, ok := owner[id]; !ok {
				owner[id] = p.Name
			}
		}
	}
	ids := make([]string, 0, len(owner))
	for id := range owner {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, owner
}

// list is a provider's own model list: cached, or asked now.
func (m *modelLists) list(ctx context.Context, p *Provider) []string {
	m.mu.Lock()
	l, ok := m.lists[p.Name]
	m.mu.Unlock()
	if ok && time.Since(l.at) < modelListTTL {
		return l.ids
	}
	// Asked once at a time, on its own deadline: a caller that hangs up
	// does not fail the others.
	v, _, _ := m.group.Do(p.Name, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), modelListTimeout)
		defer cancel()
		ids, err := m.fetch(ctx, p)
		if err != nil {
			m.s.metrics.models.WithLabelValues(p.Name, "error").Inc()
			m.s.log.Warn().Str("provider", p.Name).Str("reason", m.s.redact.string(err.Error())).Msg("the provider's model list did not come: listing its last one, or the configured models")
			return l.ids, nil
		}
		m.s.metrics.models.WithLabelValues(p.Name, "ok").Inc()
		m.mu.Lock()
		m.lists[p.Name] = modelList{ids: ids, at: time.Now()}
		m.mu.Unlock()
		return ids, nil
	})
	ids, _ := v.([]string)
	return ids
}

// fetch asks a provider for its models: OpenAI's and OpenAI-compatible
// servers' GET {base}/models, Ollama's /v1/models, Anthropic's
// /v1/models; all answer {"data":[{"id":…}]}.
func (m *modelLists) fetch(ctx context.Context, p *Provider) ([]string, error) {
	url := p.BaseURL + "/models"
	h := http.Header{}
	switch p.Kind {
	case KindOllama:
		url = p.BaseURL + "/v1/models"
	case KindAnthropic:
		url = p.BaseURL + "/v1/models?limit=1000"
		h.Set("x-api-key", p.APIKey)
		h.Set("anthropic-version", provider.AnthropicVersion)
	}
	if p.Kind != KindAnthropic && p.APIKey != "" {
		h.Set("Authorization", "Bearer "+p.APIKey)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := m.s.upstreams[p.Name].client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxModelList))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := provider.ParseError(body)
		return nil, fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(e.Message))
	}
	ids, err := provider.ParseModelList(body)
	if err != nil {
		return nil, fmt.Errorf("not a model list")
	}
	return ids, nil
}
