package provider

import (
	"encoding/json"
	"fmt"
)

// StreamOptions say how a translated stream is written.
type StreamOptions struct {
	// IncludeUsage adds OpenAI's usage chunk (choices empty) before
	// [DONE], as stream_options.include_usage asks (Request.IncludeUsage).
	IncludeUsage bool
	// Clock stamps OpenAI's created field; nil is the wall clock.
	Clock Clock
}

// AnthropicToOpenAIStream translates an Anthropic Messages stream into
// OpenAI chat.completion.chunk events, one incoming event at a time:
// message_start becomes the role chunk; a text block's text_delta a
// content chunk; a tool_use block a tool_calls chunk with its index, id,
// type and name, and each input_json_delta an arguments fragment;
// message_delta gives the finish_reason and the usage, which message_stop
// sends as the last chunk, the usage chunk (IncludeUsage) and [DONE].
// ping, thinking blocks and unknown event types (which Anthropic may add)
// send nothing.
//
// An "error" event returns a *StreamError, and a stream that stops before
// message_stop makes End return ErrStreamIncomplete: either way the caller
// ends its stream with an error (OpenAIErrorEvent), never with [DONE]. A
// block type or delta Chat Completions has no counterpart for (a server
// tool, citations) is an *UntranslatableError. Not safe for concurrent
// use; one per stream.
type AnthropicToOpenAIStream struct {
	opt     StreamOptions
	id      string
	model   string
	created int64
	counts  anthropicCounts
	finish  string
	started bool
	done    bool
	blocks  map[int]streamBlock // by Anthropic block index
	tools   int                 // tool calls so far
}

type streamBlock struct {
	typ  string
	tool int // OpenAI tool call index, for tool_use
}

// NewAnthropicToOpenAIStream starts a translator for one stream.
func NewAnthropicToOpenAIStream(o StreamOptions) *AnthropicToOpenAIStream {
	return &AnthropicToOpenAIStream{opt: o, blocks: map[int]streamBlock{}}
}

// Done reports whether message_stop arrived, and with it [DONE].
func (s *AnthropicToOpenAIStream) Done() bool { return s.done }

// End is called when the incoming stream ended: nil after message_stop,
// ErrStreamIncomplete before it.
func (s *AnthropicToOpenAIStream) End() error {
	if s.done {
		return nil
	}
	return fmt.Errorf("%w: no message_stop from Anthropic", ErrStreamIncomplete)
}

// Event translates one Anthropic event into the OpenAI events to send
// (data lines; the last is Done). The event's name is taken from ev.Name,
// or from the data's type when the name is empty.
func (s *AnthropicToOpenAIStream) Event(ev Event) ([]Event, error) {
	name := ev.Name
	if name == "" {
		var t struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(ev.Data, &t)
		name = t.Type
	}
	if name == "error" {
		e := ParseError(ev.Data)
		return nil, &StreamError{Type: e.Type, Message: e.Message}
	}
	if s.done {
		return nil, invalid(name, "an event after message_stop")
	}
	if name == "ping" {
		return nil, nil
	}
	if !s.started && name != "message_start" {
		if isAnthropicEvent(name) {
			return nil, invalid(name, "an event before message_start")
		}
		return nil, nil
	}
	switch name {
	case "message_start":
		if s.started {
			return nil, invalid(name, "a second message_start")
		}
		var e struct {
			Message struct {
				ID    string           `json:"id"`
				Model string           `json:"model"`
				Usage anthropicUsageIn `json:"usage"`
			} `json:"message"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.Message.ID == "" {
			return nil, invalid(name, "want {message: {id, model, usage}}")
		}
		s.started = true
		s.id, s.model, s.created = openAICompletionID(e.Message.ID), e.Message.Model, now(s.opt.Clock).Unix()
		s.counts.merge(e.Message.Usage)
		empty := ""
		return s.chunk(oDelta{Role: "assistant", Content: &empty}, nil), nil
	case "content_block_start":
		var e struct {
			Index        *int            `json:"index"`
			ContentBlock json.RawMessage `json:"content_block"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.Index == nil {
			return nil, invalid(name, "want {index, content_block}")
		}
		if _, ok := s.blocks[*e.Index]; ok {
			return nil, invalid(name, "block %d started twice", *e.Index)
		}
		var b struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
			ID   string  `json:"id"`
			Name string  `json:"name"`
		}
		if err := json.Unmarshal(e.ContentBlock, &b); err != nil {
			return nil, invalid(name+".content_block", "want a content block")
		}
		switch b.Type {
		case "text":
			s.blocks[*e.Index] = streamBlock{typ: b.Type}
			if b.Text != nil && *b.Text != "" {
				return s.chunk(oDelta{Content: b.Text}, nil), nil
			}
			return nil, nil
		case "tool_use":
			if b.ID == "" || b.Name == "" {
				return nil, invalid(name+".content_block", "a tool_use block needs an id and a name")
			}
			tb := streamBlock{typ: b.Type, tool: s.tools}
			s.blocks[*e.Index] = tb
			s.tools++
			return s.chunk(oDelta{ToolCalls: []oToolCallDelta{{Index: tb.tool, ID: b.ID, Type: "function", Function: oFunctionDelta{Name: b.Name}}}}, nil), nil
		case "thinking", "redacted_thinking":
			s.blocks[*e.Index] = streamBlock{typ: b.Type}
			return nil, nil
		}
		return nil, untranslatable(name+".content_block.type", "Chat Completions has no %q content", b.Type)
	case "content_block_delta":
		var e struct {
			Index *int `json:"index"`
			Delta struct {
				Type        string `json:"type"`
				Text        string `json:"text"`
				PartialJSON string `json:"partial_json"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.Index == nil {
			return nil, invalid(name, "want {index, delta}")
		}
		b, ok := s.blocks[*e.Index]
		if !ok {
			return nil, invalid(name, "a delta for block %d, which did not start", *e.Index)
		}
		switch {
		case e.Delta.Type == "text_delta" && b.typ == "text":
			if e.Delta.Text == "" {
				return nil, nil
			}
			return s.chunk(oDelta{Content: &e.Delta.Text}, nil), nil
		case e.Delta.Type == "input_json_delta" && b.typ == "tool_use":
			if e.Delta.PartialJSON == "" {
				return nil, nil
			}
			return s.chunk(oDelta{ToolCalls: []oToolCallDelta{{Index: b.tool, Function: oFunctionDelta{Arguments: e.Delta.PartialJSON}}}}, nil), nil
		case (e.Delta.Type == "thinking_delta" || e.Delta.Type == "signature_delta") && b.typ == "thinking":
			return nil, nil
		}
		return nil, untranslatable(name+".delta.type", "a %q delta in a %s block has no Chat Completions counterpart", e.Delta.Type, b.typ)
	case "content_block_stop":
		var e struct {
			Index *int `json:"index"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.Index == nil {
			return nil, invalid(name, "want {index}")
		}
		if _, ok := s.blocks[*e.Index]; !ok {
			return nil, invalid(name, "block %d did not start", *e.Index)
		}
		return nil, nil
	case "message_delta":
		var e struct {
			Delta struct {
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
			Usage anthropicUsageIn `json:"usage"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return nil, invalid(name, "want {delta, usage}")
		}
		if e.Delta.StopReason != nil {
			f, ok := OpenAIFinishReason(*e.Delta.StopReason)
			if !ok {
				return nil, untranslatable(name+".delta.stop_reason", "%q has no OpenAI finish_reason", *e.Delta.StopReason)
			}
			s.finish = f
		}
		s.counts.merge(e.Usage)
		return nil, nil
	case "message_stop":
		if s.finish == "" {
			return nil, invalid(name, "message_stop without a stop reason (no message_delta had one)")
		}
		s.done = true
		finish := s.finish
		out := s.chunk(oDelta{}, &finish)
		if s.opt.IncludeUsage {
			out = append(out, Event{Data: marshal(oChunk{
				ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
				Choices: []oChunkChoice{}, Usage: s.counts.tokens().openAI(),
			})})
		}
		return append(out, Done), nil
	}
	return nil, nil // an event type Anthropic added later
}

func (s *AnthropicToOpenAIStream) chunk(d oDelta, finish *string) []Event {
	return []Event{{Data: marshal(oChunk{
		ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []oChunkChoice{{Index: 0, Delta: d, Logprobs: jsonNull, FinishReason: finish}},
	})}}
}

func isAnthropicEvent(name string) bool {
	switch name {
	case "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
		return true
	}
	return false
}
