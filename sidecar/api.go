package sidecar

import "fmt"

// API is one of the inbound APIs the sidecar serves. A route lists the
// ones it serves (`apis:`); the default is chat and messages, which share
// the route's models and chain.
type API string

const (
	// APIChat is POST /v1/chat/completions, OpenAI's Chat Completions:
	// passed to openai, openai-compatible and ollama providers, translated
	// for anthropic ones.
	APIChat API = "chat"
	// APIMessages is POST /v1/messages, Anthropic's Messages API: passed
	// to anthropic providers, translated for the others, answered in
	// Anthropic's format (errors included).
	APIMessages API = "messages"
	// APIEmbeddings is POST /v1/embeddings: openai, openai-compatible and
	// ollama providers only (Anthropic has no embeddings API).
	APIEmbeddings API = "embeddings"
	// APIResponses is POST /v1/responses, OpenAI's Responses API, passed
	// through to openai, openai-compatible and ollama providers.
	APIResponses API = "responses"
)

// APIs lists every inbound API.
var APIs = []API{APIChat, APIMessages, APIEmbeddings, APIResponses}

// defaultAPIs is what a route serves when it does not say.
var defaultAPIs = []API{APIChat, APIMessages}

// Path is the API's endpoint.
func (a API) Path() string {
	switch a {
	case APIMessages:
		return "/v1/messages"
	case APIEmbeddings:
		return "/v1/embeddings"
	case APIResponses:
		return "/v1/responses"
	}
	return "/v1/chat/completions"
}

func (a API) valid() bool {
	switch a {
	case APIChat, APIMessages, APIEmbeddings, APIResponses:
		return true
	}
	return false
}

// streams reports whether the API has a streamed form.
func (a API) streams() bool { return a != APIEmbeddings }

// serves reports whether a provider of kind k can serve a, natively or
// translated.
func (k Kind) serves(a API) error {
	if k != KindAnthropic {
		return nil
	}
	switch a {
	case APIEmbeddings:
		return fmt.Errorf("anthropic has no embeddings API: give embeddings a route of their own (apis: [embeddings]) whose chain has openai, ollama or openai-compatible providers")
	case APIResponses:
		return fmt.Errorf("the Responses API is passed through to openai, openai-compatible and ollama providers only: give it a route of its own (apis: [responses])")
	}
	return nil
}
