package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// OpenAIOptions say how an Anthropic request becomes an OpenAI one.
type OpenAIOptions struct {
	// Model is the OpenAI model to ask; "" keeps the request's model.
	Model string
	// LegacyMaxTokens sends max_tokens rather than max_completion_tokens,
	// for Ollama's OpenAI-compatible endpoint.
	LegacyMaxTokens bool
}

// maxOpenAIStop is how many stop sequences OpenAI takes.
const maxOpenAIStop = 4

// AnthropicToOpenAIRequest translates an Anthropic Messages request body
// into an OpenAI Chat Completions request body, so that an Anthropic
// client can be served by OpenAI (or any OpenAI-compatible server):
//
//   - the top-level system prompt becomes a leading system message, and a
//     system-role message stays a system message at its place;
//   - max_tokens becomes max_completion_tokens (max_tokens with
//     LegacyMaxTokens), stop_sequences stop, metadata.user_id user;
//     temperature and top_p are kept (Anthropic's range is within
//     OpenAI's);
//   - text and image blocks become text and image_url parts (base64 as a
//     data URL); tool_use blocks an assistant's tool_calls (the input
//     object as the arguments string, ids kept); each tool_result block a
//     tool message, in order, and what follows it in the same user
//     message a user message after them;
//   - tools become function tools (input_schema as parameters), tool_choice
//     any becomes "required", tool becomes a named function, and
//     disable_parallel_tool_use parallel_tool_calls: false;
//   - a stream asks for stream_options.include_usage, since Anthropic's
//     stream always ends with usage.
//
// A body that is not a valid request is an *InvalidError; what OpenAI
// cannot do faithfully (top_k, thinking, server tools, documents, more
// than 4 stop sequences, a final assistant message, which Anthropic
// continues…) is an *UntranslatableError naming the field. is_error on a
// tool result has no OpenAI counterpart: it is dropped (listed in
// Request.Dropped) and the result's content, which says what failed, is
// sent.
func AnthropicToOpenAIRequest(body []byte, o OpenAIOptions) (*Request, error) {
	raw, err := object(body, "")
	if err != nil {
		return nil, invalid("", "the body must be a JSON object: a Messages request")
	}
	res := &Request{}
	out := oRequest{}
	var maxTokens int64
	var parallel *bool
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		switch k {
		case "model":
			if out.Model, err = decodeString(v, k); err != nil || out.Model == "" {
				return nil, invalid(k, "required, a string")
			}
		case "messages", "system", "tools", "tool_choice":
			// below
		case "max_tokens":
			if maxTokens, err = decodeInt(v, k); err != nil || maxTokens < 0 {
				return nil, invalid(k, "want a non-negative integer")
			}
			if maxTokens == 0 {
				return nil, untranslatable(k, "0 (warming the prompt cache) has no OpenAI counterpart")
			}
		case "temperature", "top_p":
			if isNull(v) {
				continue
			}
			x, err := decodeNumber(v, k)
			if err != nil {
				return nil, err
			}
			if x < 0 || x > 1 {
				return nil, invalid(k, "want a number from 0 to 1")
			}
			if k == "temperature" {
				out.Temperature = &x
			} else {
				out.TopP = &x
			}
		case "top_k":
			if !isNull(v) {
				return nil, untranslatable(k, "OpenAI has no top_k")
			}
		case "stop_sequences":
			if isNull(v) {
				continue
			}
			if err := json.Unmarshal(v, &out.Stop); err != nil {
				return nil, invalid(k, "want an array of strings")
			}
			if len(out.Stop) > maxOpenAIStop {
				return nil, untranslatable(k, "OpenAI takes at most %d stop sequences, not %d", maxOpenAIStop, len(out.Stop))
			}
		case "stream":
			if !isNull(v) {
				if out.Stream, err = decodeBool(v, k); err != nil {
					return nil, err
				}
			}
		case "metadata":
			if isNull(v) {
				continue
			}
			md, err := object(v, k)
			if err != nil {
				return nil, err
			}
			for _, mk := range sortedKeys(md) {
				if mk != "user_id" {
					return nil, untranslatable(k+"."+mk, "not a metadata field this translation knows")
				}
				if !isNull(md[mk]) {
					if out.User, err = decodeString(md[mk], k+"."+mk); err != nil {
						return nil, err
					}
				}
			}
		case "thinking":
			var t struct {
				Type string `json:"type"`
			}
			if !isNull(v) && (json.Unmarshal(v, &t) != nil || t.Type != "disabled") {
				return nil, untranslatable(k, "Chat Completions returns no thinking blocks; only {\"type\":\"disabled\"} translates")
			}
		case "service_tier", "cache_control":
			// Capacity and prompt-cache hints: they do not change the
			// answer, and OpenAI caches prompts by itself.
			if !isNull(v) {
				res.Dropped = append(res.Dropped, k)
			}
		case "inference_geo":
			if !isNull(v) {
				return nil, untranslatable(k, "OpenAI cannot be held to an inference region")
			}
		case "container", "context_management", "mcp_servers", "output_config", "speed", "diagnostics":
			if !isNull(v) {
				return nil, untranslatable(k, "Chat Completions has no counterpart")
			}
		default:
			return nil, untranslatable(k, "not a Messages field this translation knows")
		}
	}
	if out.Model == "" {
		return nil, invalid("model", "required, a string")
	}
	if _, ok := raw["max_tokens"]; !ok {
		return nil, invalid("max_tokens", "required")
	}
	if o.Model != "" {
		out.Model = o.Model
	}
	if o.LegacyMaxTokens {
		out.MaxTokens = maxTokens
	} else {
		out.MaxCompletionTokens = maxTokens
	}
	if out.Stream {
		out.StreamOptions = &oStreamOptions{IncludeUsage: true}
	}
	res.Model, res.Stream, res.IncludeUsage = out.Model, out.Stream, out.Stream

	if v := raw["system"]; !isNull(v) {
		content, d, err := openAIText(v, "system")
		if err != nil {
			return nil, err
		}
		res.Dropped = append(res.Dropped, d...)
		out.Messages = append(out.Messages, oMessage{Role: "system", Content: content})
	}
	msgs, d, err := openAIMessages(raw["messages"])
	if err != nil {
		return nil, err
	}
	res.Dropped = append(res.Dropped, d...)
	out.Messages = append(out.Messages, msgs...)

	if v := raw["tools"]; !isNull(v) {
		if out.Tools, d, err = openAITools(v); err != nil {
			return nil, err
		}
		res.Dropped = append(res.Dropped, d...)
	}
	if v := raw["tool_choice"]; !isNull(v) {
		if out.ToolChoice, parallel, err = openAIToolChoice(v); err != nil {
			return nil, err
		}
		out.ParallelToolCalls = parallel
	}
	slices.Sort(res.Dropped)
	res.Body = marshal(out)
	return res, nil
}

// openAIText translates text-only content (a string or text blocks) into
// an OpenAI content value: a string for a string or one block, text parts
// for several.
func openAIText(c json.RawMessage, field string) (json.RawMessage, []string, error) {
	if isString(c) {
		if _, err := decodeString(c, field); err != nil {
			return nil, nil, err
		}
		return c, nil, nil
	}
	blocks, err := anthropicBlocks(c, field)
	if err != nil {
		return nil, nil, err
	}
	var parts []oPart
	var dropped []string
	for j, b := range blocks {
		bf := fmt.Sprintf("%s[%d]", field, j)
		if b.typ != "text" {
			return nil, nil, untranslatable(bf+".type", "only text blocks can go here, not %q", b.typ)
		}
		p, d, err := openAITextPart(b, bf)
		if err != nil {
			return nil, nil, err
		}
		dropped = append(dropped, d...)
		parts = append(parts, p)
	}
	return textContent(parts), dropped, nil
}

// textContent: one text part is sent as a string.
func textContent(parts []oPart) json.RawMessage {
	if len(parts) == 0 {
		return json.RawMessage(`""`)
	}
	if len(parts) == 1 && parts[0].Type == "text" {
		return marshal(*parts[0].Text)
	}
	return marshal(parts)
}

// block is an Anthropic content block as read: its type and members.
type block struct {
	typ string
	m   map[string]json.RawMessage
}

func anthropicBlocks(c json.RawMessage, field string) ([]block, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(c, &raw); err != nil {
		return nil, invalid(field, "want a string or an array of content blocks")
	}
	out := make([]block, len(raw))
	for j, m := range raw {
		bf := fmt.Sprintf("%s[%d]", field, j)
		if m == nil {
			return nil, invalid(bf, "want a content block")
		}
		typ, err := decodeString(m["type"], bf+".type")
		if err != nil {
			return nil, err
		}
		out[j] = block{typ: typ, m: m}
	}
	return out, nil
}

// knownMembers refuses a block member outside allowed; cache_control is
// dropped.
func knownMembers(b block, field string, allowed ...string) ([]string, error) {
	var dropped []string
	for _, k := range sortedKeys(b.m) {
		switch {
		case k == "type" || slices.Contains(allowed, k):
		case k == "cache_control":
			if !isNull(b.m[k]) {
				dropped = append(dropped, field+"."+k)
			}
		case k == "citations" && (isNull(b.m[k]) || string(b.m[k]) == "[]"):
		default:
			return nil, untranslatable(field+"."+k, "no Chat Completions counterpart")
		}
	}
	return dropped, nil
}

func openAITextPart(b block, field string) (oPart, []string, error) {
	d, err := knownMembers(b, field, "text")
	if err != nil {
		return oPart{}, nil, err
	}
	s, err := decodeString(b.m["text"], field+".text")
	if err != nil {
		return oPart{}, nil, err
	}
	return oPart{Type: "text", Text: &s}, d, nil
}

func openAIImagePart(b block, field string) (oPart, []string, error) {
	d, err := knownMembers(b, field, "source")
	if err != nil {
		return oPart{}, nil, err
	}
	var src struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	}
	if err := json.Unmarshal(b.m["source"], &src); err != nil {
		return oPart{}, nil, invalid(field+".source", "want an image source")
	}
	switch src.Type {
	case "base64":
		if src.MediaType == "" || src.Data == "" {
			return oPart{}, nil, invalid(field+".source", "a base64 source needs media_type and data")
		}
		return oPart{Type: "image_url", ImageURL: &oImageURL{URL: "data:" + src.MediaType + ";base64," + src.Data}}, d, nil
	case "url":
		if src.URL == "" {
			return oPart{}, nil, invalid(field+".source.url", "required")
		}
		return oPart{Type: "image_url", ImageURL: &oImageURL{URL: src.URL}}, d, nil
	}
	return oPart{}, nil, untranslatable(field+".source.type", "OpenAI takes image URLs and data, not a %q source", src.Type)
}

// openAIMessages translates the conversation.
func openAIMessages(raw json.RawMessage) ([]oMessage, []string, error) {
	var msgs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil || len(msgs) == 0 {
		return nil, nil, invalid("messages", "required, a non-empty array of messages")
	}
	var out []oMessage
	var dropped []string
	lastRole := ""
	for i, m := range msgs {
		f := fmt.Sprintf("messages[%d]", i)
		if m == nil {
			return nil, nil, invalid(f, "want a message object")
		}
		for _, k := range sortedKeys(m) {
			if k != "role" && k != "content" {
				return nil, nil, untranslatable(f+"."+k, "not a message field this translation knows")
			}
		}
		role, err := decodeString(m["role"], f+".role")
		if err != nil {
			return nil, nil, err
		}
		c := m["content"]
		if isNull(c) {
			return nil, nil, invalid(f+".content", "required")
		}
		switch role {
		case "system":
			content, d, err := openAIText(c, f+".content")
			if err != nil {
				return nil, nil, err
			}
			dropped = append(dropped, d...)
			out = append(out, oMessage{Role: "system", Content: content})
		case "user":
			ms, d, err := openAIUserMessages(c, f+".content")
			if err != nil {
				return nil, nil, err
			}
			dropped = append(dropped, d...)
			out = append(out, ms...)
			lastRole = role
		case "assistant":
			am, d, err := openAIAssistantMessage(c, f+".content")
			if err != nil {
				return nil, nil, err
			}
			dropped = append(dropped, d...)
			out = append(out, am)
			lastRole = role
		default:
			return nil, nil, invalid(f+".role", "%q is not a Messages role", role)
		}
	}
	if lastRole == "assistant" {
		return nil, nil, untranslatable(fmt.Sprintf("messages[%d]", len(msgs)-1), "Anthropic continues a final assistant message (a prefill); OpenAI would answer it with a new one")
	}
	if lastRole == "" {
		return nil, nil, untranslatable("messages", "OpenAI needs at least one user or assistant message")
	}
	return out, dropped, nil
}

// openAIUserMessages: tool_result blocks become tool messages, the other
// blocks user messages, in their order.
func openAIUserMessages(c json.RawMessage, field string) ([]oMessage, []string, error) {
	if isString(c) {
		if _, err := decodeString(c, field); err != nil {
			return nil, nil, err
		}
		return []oMessage{{Role: "user", Content: c}}, nil, nil
	}
	blocks, err := anthropicBlocks(c, field)
	if err != nil {
		return nil, nil, err
	}
	var out []oMessage
	var parts []oPart
	var dropped []string
	flush := func() {
		if len(parts) > 0 {
			out = append(out, oMessage{Role: "user", Content: textContent(parts)})
			parts = nil
		}
	}
	for j, b := range blocks {
		bf := fmt.Sprintf("%s[%d]", field, j)
		var p oPart
		var d []string
		var err error
		switch b.typ {
		case "text":
			p, d, err = openAITextPart(b, bf)
		case "image":
			p, d, err = openAIImagePart(b, bf)
		case "tool_result":
			var tm oMessage
			tm, d, err = openAIToolMessage(b, bf)
			if err != nil {
				return nil, nil, err
			}
			dropped = append(dropped, d...)
			flush()
			out = append(out, tm)
			continue
		case "document":
			return nil, nil, untranslatable(bf+".type", "OpenAI's file parts take neither citations, context, titles nor URLs: documents do not translate")
		default:
			return nil, nil, untranslatable(bf+".type", "a %q block has no Chat Completions counterpart", b.typ)
		}
		if err != nil {
			return nil, nil, err
		}
		dropped = append(dropped, d...)
		parts = append(parts, p)
	}
	flush()
	if len(out) == 0 {
		return nil, nil, untranslatable(field, "OpenAI takes no message without content")
	}
	return out, dropped, nil
}

func openAIToolMessage(b block, field string) (oMessage, []string, error) {
	dropped, err := knownMembers(b, field, "tool_use_id", "content", "is_error")
	if err != nil {
		return oMessage{}, nil, err
	}
	id, err := decodeString(b.m["tool_use_id"], field+".tool_use_id")
	if err != nil || id == "" {
		return oMessage{}, nil, invalid(field+".tool_use_id", "required")
	}
	if v := b.m["is_error"]; !isNull(v) {
		isErr, err := decodeBool(v, field+".is_error")
		if err != nil {
			return oMessage{}, nil, err
		}
		if isErr {
			dropped = append(dropped, field+".is_error")
		}
	}
	content := json.RawMessage(`""`)
	if c := b.m["content"]; !isNull(c) {
		t, d, err := openAIText(c, field+".content")
		var ue *UntranslatableError
		if errors.As(err, &ue) && strings.HasSuffix(ue.Field, ".type") {
			return oMessage{}, nil, untranslatable(ue.Field, "OpenAI tool messages take text only")
		}
		if err != nil {
			return oMessage{}, nil, err
		}
		dropped = append(dropped, d...)
		content = t
	}
	return oMessage{Role: "tool", ToolCallID: id, Content: content}, dropped, nil
}

// openAIAssistantMessage: text blocks become the content, tool_use blocks
// tool_calls.
func openAIAssistantMessage(c json.RawMessage, field string) (oMessage, []string, error) {
	m := oMessage{Role: "assistant"}
	if isString(c) {
		if _, err := decodeString(c, field); err != nil {
			return m, nil, err
		}
		m.Content = c
		return m, nil, nil
	}
	blocks, err := anthropicBlocks(c, field)
	if err != nil {
		return m, nil, err
	}
	var parts []oPart
	var dropped []string
	for j, b := range blocks {
		bf := fmt.Sprintf("%s[%d]", field, j)
		switch b.typ {
		case "text":
			p, d, err := openAITextPart(b, bf)
			if err != nil {
				return m, nil, err
			}
			dropped = append(dropped, d...)
			parts = append(parts, p)
		case "tool_use":
			d, err := knownMembers(b, bf, "id", "name", "input")
			if err != nil {
				return m, nil, err
			}
			dropped = append(dropped, d...)
			var tu struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			}
			_ = json.Unmarshal(b.m["id"], &tu.ID)
			_ = json.Unmarshal(b.m["name"], &tu.Name)
			if tu.ID == "" || tu.Name == "" {
				return m, nil, invalid(bf, "a tool_use block needs an id and a name")
			}
			input, ok := compactObject(b.m["input"])
			if !ok {
				return m, nil, invalid(bf+".input", "want an object")
			}
			m.ToolCalls = append(m.ToolCalls, oToolCall{ID: tu.ID, Type: "function", Function: oFunction{Name: tu.Name, Arguments: string(input)}})
		case "thinking", "redacted_thinking":
			return m, nil, untranslatable(bf+".type", "Chat Completions takes no thinking blocks")
		default:
			return m, nil, untranslatable(bf+".type", "a %q block has no Chat Completions counterpart", b.typ)
		}
	}
	switch {
	case len(parts) > 0:
		m.Content = textContent(parts)
	case len(m.ToolCalls) > 0:
		m.Content = jsonNull
	default:
		m.Content = json.RawMessage(`""`)
	}
	return m, dropped, nil
}

// openAITools translates custom tools into function tools.
func openAITools(raw json.RawMessage) ([]oTool, []string, error) {
	var tools []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, nil, invalid("tools", "want an array of tools")
	}
	var out []oTool
	var dropped []string
	for i, t := range tools {
		f := fmt.Sprintf("tools[%d]", i)
		if t == nil {
			return nil, nil, invalid(f, "want a tool object")
		}
		if v := t["type"]; !isNull(v) {
			typ, err := decodeString(v, f+".type")
			if err != nil {
				return nil, nil, err
			}
			if typ != "custom" {
				return nil, nil, untranslatable(f+".type", "%q is a server or client tool of Anthropic's own; only custom tools translate", typ)
			}
		}
		ft := oTool{Type: "function"}
		for _, k := range sortedKeys(t) {
			v := t[k]
			kf := f + "." + k
			var err error
			switch k {
			case "type":
			case "name":
				ft.Function.Name, err = decodeString(v, kf)
			case "description":
				if !isNull(v) {
					ft.Function.Description, err = decodeString(v, kf)
				}
			case "input_schema":
				schema, ok := compactObject(v)
				if !ok {
					return nil, nil, invalid(kf, "want a JSON Schema object")
				}
				ft.Function.Parameters = schema
			case "strict":
				if !isNull(v) {
					var b bool
					b, err = decodeBool(v, kf)
					ft.Function.Strict = &b
				}
			case "cache_control", "eager_input_streaming":
				// A cache hint, and how finely input is streamed.
				if !isNull(v) {
					dropped = append(dropped, kf)
				}
			default:
				if !isNull(v) {
					return nil, nil, untranslatable(kf, "OpenAI function tools have no counterpart")
				}
			}
			if err != nil {
				return nil, nil, err
			}
		}
		if ft.Function.Name == "" {
			return nil, nil, invalid(f+".name", "required")
		}
		if ft.Function.Parameters == nil {
			return nil, nil, invalid(f+".input_schema", "required")
		}
		out = append(out, ft)
	}
	return out, dropped, nil
}

// openAIToolChoice: auto → "auto", any → "required", tool → a named
// function, none → "none"; disable_parallel_tool_use → parallel_tool_calls
// false.
func openAIToolChoice(raw json.RawMessage) (json.RawMessage, *bool, error) {
	var c struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, nil, invalid("tool_choice", "want {type, name, disable_parallel_tool_use}")
	}
	var parallel *bool
	if c.DisableParallelToolUse != nil && *c.DisableParallelToolUse {
		f := false
		parallel = &f
	}
	switch c.Type {
	case "auto":
		return marshal("auto"), parallel, nil
	case "any":
		return marshal("required"), parallel, nil
	case "none":
		return marshal("none"), nil, nil
	case "tool":
		if c.Name == "" {
			return nil, nil, invalid("tool_choice.name", "required")
		}
		var n oNamedToolChoice
		n.Type, n.Function.Name = "function", c.Name
		return marshal(n), parallel, nil
	}
	return nil, nil, invalid("tool_choice.type", "%q is not a tool choice", c.Type)
}
