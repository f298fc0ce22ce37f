package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fusebox-io/fusebox/provider"
)

// relay turns a provider's stream into the client's, one incoming event
// at a time: passed on, or translated (provider/). Not safe for
// concurrent use: one per attempt.
type relay interface {
	// next returns the events to send for one incoming event, and whether
	// the client's stream is complete (its end marker is among them). A
	// provider's error event is a *provider.StreamError.
	next(ev provider.Event) ([]provider.Event, bool, error)
	// end is called when the incoming stream ends before next said it
	// was complete: the error to fail with.
	end() error
}

func newRelay(r *request, o *outbound) relay {
	switch {
	case o.conv == convFromAnthropic:
		return &fromAnthropic{s: provider.NewAnthropicToOpenAIStream(provider.StreamOptions{IncludeUsage: o.includeUsage})}
	case o.conv == convFromOpenAI:
		return &fromOpenAI{s: provider.NewOpenAIToAnthropicStream()}
	case r.api == APIMessages:
		return &anthropicPass{}
	case r.api == APIResponses:
		return &responsesPass{}
	}
	return &chatPass{}
}

var errIncomplete = fmt.Errorf("%w: the stream ended before its end marker", provider.ErrStreamIncomplete)

// passed is the one event a pass-through relay returns, kept in the
// relay: the caller is done with it before the next.
type passed [1]provider.Event

func (p *passed) one(ev provider.Event) []provider.Event {
	p[0] = ev
	return p[:]
}

// chatPass relays an OpenAI chunk stream: [DONE] ends it, an
// {"error":…} chunk is an error.
type chatPass struct{ out passed }

func (r *chatPass) next(ev provider.Event) ([]provider.Event, bool, error) {
	if ev.IsDone() {
		return r.out.one(provider.Done), true, nil
	}
	if mayBeError(ev.Data) {
		if e := provider.ParseError(ev.Data); e.Shape != provider.ShapeUnknown {
			return nil, false, &provider.StreamError{Type: e.Type, Code: e.CodeString(), Message: e.Message}
		}
	}
	return r.out.one(ev), false, nil
}

func (*chatPass) end() error { return errIncomplete }

// mayBeError reports whether a chunk could be an error that
// provider.ParseError reads: a JSON object with a member "error" (its key
// in any case, as encoding/json matches it) that is not null. Most chunks
// are told from their keys alone, without decoding or validating them: a
// "maybe" that is not JSON is refused by ParseError, and the members'
// walk stops at the first thing it cannot read (FuzzMayBeError).
func mayBeError(data []byte) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	for m := objectMembers(data[i:]); ; {
		key, val, _, ok := m.next()
		if !ok {
			return false
		}
		if bytes.EqualFold(key, []byte("error")) && !isNull(val) {
			return true
		}
	}
}

// anthropicPass relays an Anthropic event stream: message_stop ends it,
// an error event is an error.
type anthropicPass struct{ out passed }

func (r *anthropicPass) next(ev provider.Event) ([]provider.Event, bool, error) {
	name := eventName(ev)
	switch name {
	case "error":
		e := provider.ParseError(ev.Data)
		return nil, false, &provider.StreamError{Type: e.Type, Message: e.Message}
	case "message_stop":
		return r.out.one(ev), true, nil
	}
	return r.out.one(ev), false, nil
}

func (*anthropicPass) end() error { return errIncomplete }

// responsesPass relays a Responses event stream: response.completed or
// response.incomplete end it; an error event, or response.failed, is an
// error.
type responsesPass struct{ out passed }

func (r *responsesPass) next(ev provider.Event) ([]provider.Event, bool, error) {
	name := eventName(ev)
	if se := provider.ResponsesStreamError(name, ev.Data); se != nil {
		return nil, false, se
	}
	return r.out.one(ev), provider.ResponsesStreamDone(name), nil
}

func (*responsesPass) end() error { return errIncomplete }

// fromAnthropic translates an Anthropic stream for a chat client.
type fromAnthropic struct {
	s *provider.AnthropicToOpenAIStream
}

func (r *fromAnthropic) next(ev provider.Event) ([]provider.Event, bool, error) {
	out, err := r.s.Event(ev)
	return out, r.s.Done(), err
}

func (r *fromAnthropic) end() error { return r.s.End() }

// fromOpenAI translates an OpenAI chunk stream for a messages client.
type fromOpenAI struct {
	s *provider.OpenAIToAnthropicStream
}

func (r *fromOpenAI) next(ev provider.Event) ([]provider.Event, bool, error) {
	out, err := r.s.Chunk(ev.Data)
	return out, r.s.Done(), err
}

func (r *fromOpenAI) end() error { return r.s.End() }

// eventName is the event's name, or its data's type when it has none.
func eventName(ev provider.Event) string {
	if ev.Name != "" {
		return ev.Name
	}
	var t struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(ev.Data, &t)
	return t.Type
}

// anyToken reports whether events carry content, in the client's format:
// what the first-token timeout waits for. A stream's opening (a role-only
// chunk, message_start, response.created) does not.
func anyToken(api API, evs []provider.Event) bool {
	for _, ev := range evs {
		switch api {
		case APIMessages:
			switch eventName(ev) {
			case "content_block_delta", "message_delta", "message_stop":
				return true
			case "content_block_start":
				var b struct {
					ContentBlock struct {
						Type string  `json:"type"`
						Text *string `json:"text"`
					} `json:"content_block"`
				}
				if json.Unmarshal(ev.Data, &b) != nil || b.ContentBlock.Type != "text" || (b.ContentBlock.Text != nil && *b.ContentBlock.Text != "") {
					return true
				}
			}
		case APIResponses:
			name := eventName(ev)
			if !slices.Contains([]string{"response.created", "response.in_progress", "response.queued", "response.output_item.added", "response.content_part.added"}, name) {
				return true
			}
		default:
			if ev.IsDone() || chatChunkHasToken(ev.Data) {
				return true
			}
		}
	}
	return false
}

// chatChunkHasToken: text, a tool call, a refusal, a finish reason or the
// usage. A role-only first chunk has none.
func chatChunkHasToken(data []byte) bool {
	var ch struct {
		Choices []struct {
			Delta struct {
				Content   string          `json:"content"`
				Refusal   string          `json:"refusal"`
				ToolCalls json.RawMessage `json:"tool_calls"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(data, &ch) != nil {
		return true // not ours to judge: pass it on
	}
	if !isNull(ch.Usage) {
		return true
	}
	for _, x := range ch.Choices {
		if x.Delta.Content != "" || x.Delta.Refusal != "" || !isNull(x.Delta.ToolCalls) || x.FinishReason != nil {
			return true
		}
	}
	return false
}

// streamErrorEvent is the event that ends a client's stream that failed
// after it began: OpenAI's error chunk (no [DONE] after it), Anthropic's
// error event (overloaded_error when the provider said so, api_error
// otherwise), or the Responses API's error event.
func streamErrorEvent(api API, msg string, cause error) provider.Event {
	switch api {
	case APIMessages:
		typ := "api_error"
		if se := asStreamError(cause); se != nil && provider.AnthropicErrorStatus(se.Type) >= 500 {
			typ = se.Type // overloaded_error: the SDKs retry it
		}
		return provider.AnthropicErrorEvent(typ, msg)
	case APIResponses:
		b, _ := json.Marshal(map[string]any{"type": "error", "code": "fusebox_upstream_stream_error", "message": msg, "param": nil})
		return provider.Event{Name: "error", Data: b}
	}
	return provider.Event{Data: provider.OpenAIErrorBody(msg, "fusebox_upstream_stream_error", "", "")}
}
