package fakeprovider

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ToolAnswerPrefix starts the text a provider answers once the
// conversation ends with tool results: "The tool said: " and the results,
// joined with "; ". A test sees from it that the results arrived.
const ToolAnswerPrefix = "The tool said: "

// ToolAnswer is the text answered after the tool results given.
func ToolAnswer(results ...string) string { return ToolAnswerPrefix + strings.Join(results, "; ") }

// ToolPreamble is the text block Anthropic answers before its tool_use
// blocks, as Claude often does.
const ToolPreamble = "Let me call a tool."

// Arguments are the arguments the fake calls a tool with, made from its
// JSON Schema: each property (sorted by name) gets its first enum value,
// or "fake" for a string, 1 for a number or an integer, true for a
// boolean, [] for an array, {} for an object.
func Arguments(schema json.RawMessage) json.RawMessage {
	var s struct {
		Properties map[string]struct {
			Type json.RawMessage `json:"type"`
			Enum []any           `json:"enum"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s)
	out := map[string]any{}
	for name, p := range s.Properties {
		var typ string
		if json.Unmarshal(p.Type, &typ) != nil {
			var many []string
			if json.Unmarshal(p.Type, &many) == nil && len(many) > 0 {
				typ = many[0]
			}
		}
		switch {
		case len(p.Enum) > 0:
			out[name] = p.Enum[0]
		case typ == "integer", typ == "number":
			out[name] = 1
		case typ == "boolean":
			out[name] = true
		case typ == "array":
			out[name] = []any{}
		case typ == "object":
			out[name] = map[string]any{}
		default:
			out[name] = "fake"
		}
	}
	b, _ := json.Marshal(out) // map keys sorted
	return b
}

// toolCall is one call the fake decided to make.
type toolCall struct {
	id, name string
	args     json.RawMessage
}

// turn is what the fake answers a chat request with: text, or text and
// tool calls.
type turn struct {
	text  string
	calls []toolCall
}

// tool is a tool a request offered.
type tool struct {
	name   string
	schema json.RawMessage
}

// decideTools picks the calls for offered tools: none when there are none,
// the choice is none, or the conversation ends with tool results; the
// named tool when one is forced; otherwise the first tool, and the second
// too when there are several and parallel calls are allowed.
func decideTools(tools []tool, choice string, named string, parallel bool, prefix string) []toolCall {
	if len(tools) == 0 || choice == "none" {
		return nil
	}
	pick := tools[:1]
	if named != "" {
		i := slices.IndexFunc(tools, func(t tool) bool { return t.name == named })
		if i < 0 {
			return nil
		}
		pick = tools[i : i+1]
	} else if parallel && len(tools) > 1 {
		pick = tools[:2]
	}
	var out []toolCall
	for _, t := range pick {
		out = append(out, toolCall{id: fmt.Sprintf("%s%d", prefix, seq.Add(1)), name: t.name, args: Arguments(t.schema)})
	}
	return out
}

// openAIRequest is what the fake reads of a chat completions request.
type openAIRequest struct {
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Messages          []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
}

// openAITurn decides the answer to a chat completions request.
func openAITurn(body []byte) (turn, string) {
	var r openAIRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return turn{text: Reply}, ""
	}
	if msg := r.validate(); msg != "" {
		return turn{}, msg
	}
	// Tool results last: answer with them.
	var results []string
	for i := len(r.Messages) - 1; i >= 0 && r.Messages[i].Role == "tool"; i-- {
		results = append([]string{textOf(r.Messages[i].Content)}, results...)
	}
	if len(results) > 0 {
		return turn{text: ToolAnswer(results...)}, ""
	}
	var tools []tool
	for _, t := range r.Tools {
		if t.Type == "function" {
			tools = append(tools, tool{name: t.Function.Name, schema: t.Function.Parameters})
		}
	}
	choice, named := "auto", ""
	var s string
	if json.Unmarshal(r.ToolChoice, &s) == nil {
		choice = s
	} else {
		var c struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(r.ToolChoice, &c) == nil {
			named = c.Function.Name
		}
	}
	parallel := r.ParallelToolCalls == nil || *r.ParallelToolCalls
	if calls := decideTools(tools, choice, named, parallel, "call_fake"); len(calls) > 0 {
		return turn{calls: calls}, ""
	}
	return turn{text: Reply}, ""
}

// validate checks the tool-call bookkeeping OpenAI checks: a tool
// message answers a tool call of an assistant message before it, and an
// assistant's tool calls are each answered before the conversation goes
// on. It returns OpenAI's message, or "".
func (r *openAIRequest) validate() string {
	pending := map[string]bool{}
	for i, m := range r.Messages {
		switch m.Role {
		case "tool":
			if !pending[m.ToolCallID] {
				return fmt.Sprintf("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls' (messages[%d], tool_call_id %q).", i, m.ToolCallID)
			}
			delete(pending, m.ToolCallID)
			continue
		case "assistant":
			for j, c := range m.ToolCalls {
				var args string
				if json.Unmarshal(c.Function.Arguments, &args) != nil {
					return fmt.Sprintf("Invalid type for 'messages[%d].tool_calls[%d].function.arguments': expected a string.", i, j)
				}
			}
		}
		if len(pending) > 0 {
			var ids []string
			for id := range pending {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + strings.Join(ids, ", ")
		}
		for _, c := range m.ToolCalls {
			pending[c.ID] = true
		}
	}
	return ""
}

// anthropicRequest is what the fake reads of a Messages request.
type anthropicRequest struct {
	Tools []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
	} `json:"tool_choice"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

func blocks(c json.RawMessage) []anthropicBlock {
	var s string
	if json.Unmarshal(c, &s) == nil {
		return []anthropicBlock{{Type: "text", Text: &s}}
	}
	var bs []anthropicBlock
	_ = json.Unmarshal(c, &bs)
	return bs
}

// anthropicTurn decides the answer to a Messages request.
func anthropicTurn(body []byte) (turn, string) {
	var r anthropicRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return turn{text: Reply}, ""
	}
	if msg := r.validate(); msg != "" {
		return turn{}, msg
	}
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == "user" {
		var results []string
		for _, b := range blocks(r.Messages[n-1].Content) {
			if b.Type == "tool_result" {
				results = append(results, textOf(b.Content))
			}
		}
		if len(results) > 0 {
			return turn{text: ToolAnswer(results...)}, ""
		}
	}
	var tools []tool
	for _, t := range r.Tools {
		if t.Type == "" || t.Type == "custom" {
			tools = append(tools, tool{name: t.Name, schema: t.InputSchema})
		}
	}
	choice, named, parallel := "auto", "", true
	if c := r.ToolChoice; c != nil {
		choice, parallel = c.Type, !c.DisableParallelToolUse
		if c.Type == "tool" {
			named = c.Name
		}
	}
	if calls := decideTools(tools, choice, named, parallel, "toolu_fake"); len(calls) > 0 {
		return turn{text: ToolPreamble, calls: calls}, ""
	}
	return turn{text: Reply}, ""
}

// validate checks what Anthropic checks of tool use and content: no
// empty text block, a tool_use input is an object, every tool_result
// answers a tool_use of the message just before it, and every tool_use is
// answered in the next message. It returns Anthropic's message, or "".
func (r *anthropicRequest) validate() string {
	var uses []string // tool_use ids of the previous assistant message
	for i, m := range r.Messages {
		var results []string
		for j, b := range blocks(m.Content) {
			switch b.Type {
			case "text":
				if b.Text == nil || *b.Text == "" {
					return fmt.Sprintf("messages.%d.content.%d: text content blocks must be non-empty", i, j)
				}
			case "tool_use":
				var in map[string]any
				if json.Unmarshal(b.Input, &in) != nil || in == nil {
					return fmt.Sprintf("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
				}
			case "tool_result":
				if !slices.Contains(uses, b.ToolUseID) {
					return fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
				}
				results = append(results, b.ToolUseID)
			}
		}
		for _, id := range uses {
			if !slices.Contains(results, id) {
				return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, id)
			}
		}
		uses = nil
		if m.Role == "assistant" {
			for _, b := range blocks(m.Content) {
				if b.Type == "tool_use" {
					uses = append(uses, b.ID)
				}
			}
		}
	}
	return ""
}

// textOf flattens content (a string, or parts or blocks with text) to its
// text.
func textOf(c json.RawMessage) string {
	var s string
	if json.Unmarshal(c, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(c, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// fragments splits a tool call's arguments into up to three pieces, as
// providers stream them.
func fragments(args string) []string {
	if len(args) < 3 {
		return []string{args}
	}
	a, b := len(args)/3, 2*len(args)/3
	return []string{args[:a], args[a:b], args[b:]}
}
