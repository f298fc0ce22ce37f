package provider

import (
	"encoding/json"
	"fmt"
)

// OpenAIToAnthropicStream translates an OpenAI chat.completion.chunk
// stream into Anthropic Messages stream events, one incoming data line at
// a time: the first chunk becomes message_start; content opens a text
// block (content_block_start) and each piece of it a text_delta; a tool
// call with an id and a name opens a tool_use block and each arguments
// fragment an input_json_delta; a block is stopped (content_block_stop)
// when the next one starts. [DONE] after a finish_reason stops the last
// block and sends message_delta (the stop_reason, and the usage of the
// usage chunk, which AnthropicToOpenAIRequest always asks for) and
// message_stop.
//
// An {"error":…} chunk is a *StreamError, and [DONE] without a
// finish_reason ErrStreamIncomplete: the caller must end its stream with
// an error event (AnthropicErrorEvent), never with message_stop. A second
// choice (n > 1), audio, or tool-call fragments that go back to a call
// already closed are an *UntranslatableError. Not safe for concurrent
// use; one per stream.
type OpenAIToAnthropicStream struct {
	started, done bool
	refused       bool
	finish        string
	usage         tokens
	next          int         // the index of the next block
	open          int         // the open block's index, -1 when none
	openType      string      // text or tool_use
	tools         map[int]int // OpenAI tool call index → block index
}

// NewOpenAIToAnthropicStream starts a translator for one stream.
func NewOpenAIToAnthropicStream() *OpenAIToAnthropicStream {
	return &OpenAIToAnthropicStream{open: -1, tools: map[int]int{}}
}

// Done reports whether [DONE] arrived after a finish_reason, and with it
// message_stop.
func (s *OpenAIToAnthropicStream) Done() bool { return s.done }

// End is called when the incoming stream ended: nil after [DONE],
// ErrStreamIncomplete before it.
func (s *OpenAIToAnthropicStream) End() error {
	if s.done {
		return nil
	}
	return fmt.Errorf("%w: no [DONE] after a finish_reason from OpenAI", ErrStreamIncomplete)
}

// Chunk translates the data of one OpenAI event (a chunk's JSON, or
// "[DONE]") into the Anthropic events to send.
func (s *OpenAIToAnthropicStream) Chunk(data []byte) ([]Event, error) {
	if s.done {
		return nil, invalid("stream", "data after [DONE]")
	}
	if string(data) == "[DONE]" {
		if s.finish == "" {
			return nil, fmt.Errorf("%w: [DONE] before any finish_reason", ErrStreamIncomplete)
		}
		s.done = true
		out := s.stop()
		stop := s.finish
		if s.refused && stop == "end_turn" {
			stop = "refusal"
		}
		out = append(out, event("message_delta", aMessageDelta{
			Type:  "message_delta",
			Delta: aMessageDeltaD{StopReason: stop},
			Usage: s.usage.anthropic(),
		}))
		return append(out, event("message_stop", struct {
			Type string `json:"type"`
		}{"message_stop"})), nil
	}
	var c struct {
		ID      string            `json:"id"`
		Model   string            `json:"model"`
		Choices []json.RawMessage `json:"choices"`
		Usage   json.RawMessage   `json:"usage"`
		Error   json.RawMessage   `json:"error"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, invalid("chunk", "not a JSON object")
	}
	if !isNull(c.Error) {
		e := ParseError(data)
		return nil, &StreamError{Type: e.Type, Code: e.CodeString(), Message: e.Message}
	}
	var out []Event
	if !s.started {
		s.started = true
		out = append(out, event("message_start", aMessageStart{Type: "message_start", Message: aResponse{
			ID: anthropicMessageID(c.ID), Type: "message", Role: "assistant", Model: c.Model, Content: []aBlock{},
		}}))
	}
	if !isNull(c.Usage) {
		t, err := tokensFromOpenAI(c.Usage, "usage")
		if err != nil {
			return nil, err
		}
		s.usage = t
	}
	for k, raw := range c.Choices {
		f := fmt.Sprintf("choices[%d]", k)
		var ch struct {
			Index int `json:"index"`
			Delta struct {
				Content      *string           `json:"content"`
				Refusal      *string           `json:"refusal"`
				ToolCalls    []json.RawMessage `json:"tool_calls"`
				FunctionCall json.RawMessage   `json:"function_call"`
				Audio        json.RawMessage   `json:"audio"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		}
		if err := json.Unmarshal(raw, &ch); err != nil {
			return nil, invalid(f, "want {index, delta, finish_reason}")
		}
		if ch.Index != 0 {
			return nil, untranslatable(f+".index", "an Anthropic stream is one answer; choice %d is another", ch.Index)
		}
		if !isNull(ch.Delta.FunctionCall) {
			return nil, untranslatable(f+".delta.function_call", "the deprecated function calling does not translate")
		}
		if !isNull(ch.Delta.Audio) {
			return nil, untranslatable(f+".delta.audio", "Anthropic answers in text only")
		}
		if s.finish != "" && (ch.Delta.Content != nil && *ch.Delta.Content != "" || len(ch.Delta.ToolCalls) > 0) {
			return nil, invalid(f+".delta", "content after the finish_reason")
		}
		for _, t := range []*string{ch.Delta.Content, ch.Delta.Refusal} {
			if t == nil || *t == "" {
				continue
			}
			if t == ch.Delta.Refusal {
				s.refused = true
			}
			if s.openType != "text" {
				out = append(out, s.stop()...)
				out = append(out, s.start(aText(""))...)
			}
			text := *t
			out = append(out, event("content_block_delta", aBlockDelta{Type: "content_block_delta", Index: s.open, Delta: aDelta{Type: "text_delta", Text: &text}}))
		}
		for j, raw := range ch.Delta.ToolCalls {
			ev, err := s.toolCall(raw, fmt.Sprintf("%s.delta.tool_calls[%d]", f, j))
			if err != nil {
				return nil, err
			}
			out = append(out, ev...)
		}
		if ch.FinishReason != nil {
			stop, ok := AnthropicStopReason(*ch.FinishReason)
			if !ok {
				return nil, untranslatable(f+".finish_reason", "%q has no Anthropic stop_reason", *ch.FinishReason)
			}
			s.finish = stop
		}
	}
	return out, nil
}

func (s *OpenAIToAnthropicStream) toolCall(raw json.RawMessage, field string) ([]Event, error) {
	var tc struct {
		Index    *int    `json:"index"`
		ID       string  `json:"id"`
		Type     *string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &tc); err != nil || tc.Index == nil {
		return nil, invalid(field, "want {index, id, type, function}")
	}
	if tc.Type != nil && *tc.Type != "function" {
		return nil, untranslatable(field+".type", "only function tool calls translate, not %q", *tc.Type)
	}
	var out []Event
	block, known := s.tools[*tc.Index]
	switch {
	case !known:
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, invalid(field, "the first fragment of tool call %d has no id or name", *tc.Index)
		}
		out = append(out, s.stop()...)
		out = append(out, s.start(aBlock{Type: "tool_use", ID: anthropicToolID(tc.ID), Name: tc.Function.Name, Input: json.RawMessage("{}")})...)
		s.tools[*tc.Index] = s.open
		block = s.open
	case block != s.open:
		return nil, untranslatable(field+".index", "a fragment of tool call %d after the next block began: Anthropic streams one block after another", *tc.Index)
	}
	if tc.Function.Arguments != "" {
		args := tc.Function.Arguments
		out = append(out, event("content_block_delta", aBlockDelta{Type: "content_block_delta", Index: block, Delta: aDelta{Type: "input_json_delta", PartialJSON: &args}}))
	}
	return out, nil
}

// start opens block b at the next index.
func (s *OpenAIToAnthropicStream) start(b aBlock) []Event {
	s.open, s.openType = s.next, b.Type
	s.next++
	return []Event{event("content_block_start", aBlockStart{Type: "content_block_start", Index: s.open, ContentBlock: b})}
}

// stop closes the open block, if any.
func (s *OpenAIToAnthropicStream) stop() []Event {
	if s.open < 0 {
		return nil
	}
	i := s.open
	s.open, s.openType = -1, ""
	return []Event{event("content_block_stop", aBlockStop{Type: "content_block_stop", Index: i})}
}

func event(name string, v any) Event { return Event{Name: name, Data: marshal(v)} }
