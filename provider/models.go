package provider

import (
	"encoding/json"
	"errors"
)

// ErrNotModelList is returned by ParseModelList for a body that is not a
// model list.
var ErrNotModelList = errors.New("provider: not a model list")

// ParseModelList reads a provider's model list, {"data":[{"id":…}, …]}:
// the shape of OpenAI's and OpenAI-compatible servers' GET /models,
// Ollama's GET /v1/models and Anthropic's GET /v1/models alike. It
// returns the ids in the order given, leaving out empty ones.
func ParseModelList(body []byte) ([]string, error) {
	var l struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &l); err != nil || l.Data == nil {
		return nil, ErrNotModelList
	}
	ids := make([]string, 0, len(l.Data))
	for _, d := range l.Data {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}
