package provider

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// AnthropicOptions say how an OpenAI request becomes an Anthropic one.
type AnthropicOptions struct {
	// Model is the Anthropic model to ask; "" keeps the request's model.
	Model string
	// MaxTokens is max_tokens when the request sets neither
	// max_completion_tokens nor max_tokens (Anthropic requires one); 0
	// means 4096.
	MaxTokens int64
	// Version is the anthropic-version header the body will be sent with:
	// "" means AnthropicVersion (2023-06-01); under
	// AnthropicVersion20261021 temperature and top_p are refused.
	Version string
	// SystemInMessages sends a system or developer message that comes
	// after the first user or assistant message at its place, as a
	// system-role message (which Anthropic takes since May 2026); false
	// lifts every one into the top-level system prompt, as every model
	// takes it.
	SystemInMessages bool
}

const defaultMaxTokens = 4096

// OpenAIToAnthropicRequest translates an OpenAI Chat Completions request
// body into an Anthropic Messages request body, so that an OpenAI client
// can be served by Anthropic:
//
//   - system and developer messages become the top-level system prompt
//     (see AnthropicOptions.SystemInMessages);
//   - max_completion_tokens (or max_tokens) becomes max_tokens, which
//     Anthropic requires: o.MaxTokens when the request has none;
//   - temperature is clamped to 1 (Anthropic's range is 0–1), top_p kept,
//     stop becomes stop_sequences, user (or safety_identifier) becomes
//     metadata.user_id;
//   - text and image parts become text and image blocks (a base64 data URL
//     a base64 source, an http(s) URL a url source);
//   - tools, tool_choice and parallel_tool_calls become Anthropic's tools
//     and tool_choice; an assistant's tool_calls become tool_use blocks
//     (the arguments string parsed into the input object), tool messages
//     tool_result blocks in a user message; consecutive messages of one
//     role are merged into one.
//
// A body that is not a valid request is an *InvalidError; a valid one
// with something Anthropic cannot do faithfully (n > 1, logprobs, audio,
// response_format json_schema, a tool other than a function, a final
// assistant message, which Anthropic would continue rather than answer…)
// is an *UntranslatableError naming the field.
func OpenAIToAnthropicRequest(body []byte, o AnthropicOptions) (*Request, error) {
	raw, err := object(body, "")
	if err != nil {
		return nil, invalid("", "the body must be a JSON object: a chat completions request")
	}
	version := o.Version
	if version == "" {
		version = AnthropicVersion
	}
	if version != AnthropicVersion && version != AnthropicVersion20261021 {
		return nil, fmt.Errorf("provider: anthropic-version %q is not one this package writes", version)
	}
	res := &Request{}
	out := aRequest{}
	var user, safetyID string
	var parallel *bool
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		switch k {
		case "model":
			if out.Model, err = decodeString(v, k); err != nil || out.Model == "" {
				return nil, invalid(k, "required, a string")
			}
		case "messages", "tools", "tool_choice", "max_completion_tokens", "max_tokens":
			// below
		case "temperature", "top_p":
			if isNull(v) {
				continue
			}
			x, err := decodeNumber(v, k)
			if err != nil {
				return nil, err
			}
			if version == AnthropicVersion20261021 {
				return nil, untranslatable(k, "anthropic-version %s answers 400 to sampling parameters", version)
			}
			if k == "temperature" {
				if x < 0 || x > 2 {
					return nil, invalid(k, "want a number from 0 to 2")
				}
				x = math.Min(x, 1) // Anthropic's range is 0 to 1
				out.Temperature = &x
			} else {
				if x < 0 || x > 1 {
					return nil, invalid(k, "want a number from 0 to 1")
				}
				out.TopP = &x
			}
		case "stop":
			if out.StopSequences, err = openAIStop(v); err != nil {
				return nil, err
			}
		case "stream":
			if !isNull(v) {
				if res.Stream, err = decodeBool(v, k); err != nil {
					return nil, err
				}
			}
		case "stream_options":
			if isNull(v) {
				continue
			}
			so, err := object(v, k)
			if err != nil {
				return nil, err
			}
			for _, sk := range sortedKeys(so) {
				switch sk {
				case "include_usage":
					if !isNull(so[sk]) {
						if res.IncludeUsage, err = decodeBool(so[sk], k+"."+sk); err != nil {
							return nil, err
						}
					}
				case "include_obfuscation":
					res.Dropped = append(res.Dropped, k+"."+sk)
				default:
					return nil, untranslatable(k+"."+sk, "not a stream option this translation knows")
				}
			}
		case "user", "safety_identifier":
			if isNull(v) {
				continue
			}
			s, err := decodeString(v, k)
			if err != nil {
				return nil, err
			}
			if k == "user" {
				user = s
			} else {
				safetyID = s
			}
		case "parallel_tool_calls":
			if !isNull(v) {
				b, err := decodeBool(v, k)
				if err != nil {
					return nil, err
				}
				parallel = &b
			}
		case "n":
			if !isNull(v) && string(v) != "1" {
				return nil, untranslatable(k, "Anthropic answers with one message per request")
			}
		case "logprobs", "top_logprobs":
			if !isNull(v) && string(v) != "false" && string(v) != "0" {
				return nil, untranslatable(k, "Anthropic returns no log probabilities")
			}
		case "frequency_penalty", "presence_penalty":
			if f, err := decodeNumber(v, k); !isNull(v) && (err != nil || f != 0) {
				return nil, untranslatable(k, "Anthropic has no frequency or presence penalty")
			}
		case "logit_bias":
			if !isNull(v) && string(v) != "{}" {
				return nil, untranslatable(k, "Anthropic has no logit bias")
			}
		case "modalities":
			var m []string
			if !isNull(v) && (json.Unmarshal(v, &m) != nil || !slices.Equal(m, []string{"text"})) {
				return nil, untranslatable(k, "Anthropic answers in text only")
			}
		case "audio":
			if !isNull(v) {
				return nil, untranslatable(k, "Anthropic answers in text only")
			}
		case "reasoning_effort":
			if !isNull(v) && string(v) != `"none"` {
				return nil, untranslatable(k, `Anthropic's extended thinking is set with a token budget and adds thinking blocks to the answer; only "none" translates`)
			}
		case "response_format":
			var rf struct {
				Type string `json:"type"`
			}
			if !isNull(v) && (json.Unmarshal(v, &rf) != nil || rf.Type != "text") {
				return nil, untranslatable(k, `Anthropic's structured outputs take another JSON Schema subset, on some models only, and json_object has no counterpart; only {"type":"text"} translates`)
			}
		case "verbosity":
			if !isNull(v) {
				return nil, untranslatable(k, "Anthropic has no verbosity setting")
			}
		case "web_search_options":
			if !isNull(v) {
				return nil, untranslatable(k, "web search is a server tool at Anthropic, answered with its own content blocks")
			}
		case "functions", "function_call":
			if !isNull(v) {
				return nil, untranslatable(k, "the deprecated function calling does not translate; tools do")
			}
		case "moderation":
			if !isNull(v) {
				return nil, untranslatable(k, "Anthropic has no moderation setting")
			}
		case "store", "metadata", "service_tier", "seed", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "prediction":
			// No counterpart, and none changes the answer's content: seed
			// is best effort at OpenAI too, the rest are storage, billing
			// tier, cache and latency hints.
			if !isNull(v) {
				res.Dropped = append(res.Dropped, k)
			}
		default:
			return nil, untranslatable(k, "not a Chat Completions field this translation knows")
		}
	}
	if out.Model == "" {
		return nil, invalid("model", "required, a string")
	}
	if o.Model != "" {
		out.Model = o.Model
	}
	res.Model = out.Model
	out.Stream = res.Stream

	out.MaxTokens = o.MaxTokens
	if out.MaxTokens <= 0 {
		out.MaxTokens = defaultMaxTokens
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} { // the second wins
		if v := raw[k]; !isNull(v) {
			n, err := decodeInt(v, k)
			if err != nil || n < 1 {
				return nil, invalid(k, "want a positive integer")
			}
			out.MaxTokens = n
		}
	}

	switch {
	case safetyID != "":
		out.Metadata = &aMetadata{UserID: safetyID}
		if user != "" && user != safetyID {
			res.Dropped = append(res.Dropped, "user")
		}
	case user != "":
		out.Metadata = &aMetadata{UserID: user}
	}

	var dropped []string
	out.System, out.Messages, dropped, err = anthropicMessages(raw["messages"], o.SystemInMessages)
	if err != nil {
		return nil, err
	}
	res.Dropped = append(res.Dropped, dropped...)

	if v := raw["tools"]; !isNull(v) {
		if out.Tools, err = anthropicTools(v); err != nil {
			return nil, err
		}
	}
	if v := raw["tool_choice"]; !isNull(v) {
		if out.ToolChoice, err = anthropicToolChoice(v); err != nil {
			return nil, err
		}
	}
	if parallel != nil && !*parallel {
		if out.ToolChoice == nil {
			out.ToolChoice = &aToolChoice{Type: "auto"}
		}
		if out.ToolChoice.Type != "none" { // none takes no such flag
			out.ToolChoice.DisableParallelToolUse = true
		}
	}
	if len(out.Tools) == 0 && out.ToolChoice != nil && out.ToolChoice.Type == "none" {
		out.ToolChoice = nil // no tools, none to refuse
	}
	slices.Sort(res.Dropped)
	res.Body = marshal(out)
	return res, nil
}

func openAIStop(v json.RawMessage) ([]string, error) {
	if isNull(v) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(v, &one) == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, invalid("stop", "want a string or an array of strings")
	}
	return slices.DeleteFunc(many, func(s string) bool { return s == "" }), nil
}

// anthropicMessages translates the messages: the system prompt, the
// conversation with same-role neighbours merged, and what was dropped.
func anthropicMessages(raw json.RawMessage, systemInMessages bool) ([]aBlock, []aMessage, []string, error) {
	var msgs []json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil || len(msgs) == 0 {
		return nil, nil, nil, invalid("messages", "required, a non-empty array of messages")
	}
	var system []aBlock
	var out []aMessage
	var dropped []string
	began := false
	add := func(role string, blocks []aBlock) {
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			return
		}
		out = append(out, aMessage{Role: role, Content: blocks})
	}
	lastTurn := -1 // the index of the last user or assistant message
	lastRole := ""
	for i, m := range msgs {
		f := fmt.Sprintf("messages[%d]", i)
		mm, err := object(m, f)
		if err != nil {
			return nil, nil, nil, err
		}
		role, err := decodeString(mm["role"], f+".role")
		if err != nil {
			return nil, nil, nil, err
		}
		for _, k := range sortedKeys(mm) {
			v := mm[k]
			switch k {
			case "role", "content":
			case "tool_calls":
				if role != "assistant" && !isNull(v) {
					return nil, nil, nil, invalid(f+"."+k, "only an assistant message has tool calls")
				}
			case "tool_call_id":
				if role != "tool" {
					return nil, nil, nil, invalid(f+"."+k, "only a tool message answers a tool call")
				}
			case "name":
				if !isNull(v) {
					return nil, nil, nil, untranslatable(f+".name", "Anthropic messages have no participant names")
				}
			case "refusal":
				if !isNull(v) {
					return nil, nil, nil, untranslatable(f+".refusal", "Anthropic messages have no refusal field")
				}
			case "audio", "function_call":
				if !isNull(v) {
					return nil, nil, nil, untranslatable(f+"."+k, "Anthropic has no counterpart")
				}
			default:
				return nil, nil, nil, untranslatable(f+"."+k, "not a message field this translation knows")
			}
		}
		switch role {
		case "system", "developer":
			blocks, d, err := anthropicText(mm["content"], f+".content", nil)
			if err != nil {
				return nil, nil, nil, err
			}
			dropped = append(dropped, d...)
			if began && systemInMessages {
				add("system", blocks)
			} else {
				system = append(system, blocks...)
			}
		case "user":
			blocks, d, err := anthropicUserContent(mm["content"], f+".content")
			if err != nil {
				return nil, nil, nil, err
			}
			dropped = append(dropped, d...)
			add("user", blocks)
			began, lastTurn, lastRole = true, i, role
		case "assistant":
			blocks, d, err := anthropicText(mm["content"], f+".content", map[string]string{
				"refusal": "Anthropic content has no refusal part",
			})
			if err != nil {
				return nil, nil, nil, err
			}
			dropped = append(dropped, d...)
			calls, err := anthropicToolUses(mm["tool_calls"], f+".tool_calls")
			if err != nil {
				return nil, nil, nil, err
			}
			add("assistant", append(blocks, calls...))
			began, lastTurn, lastRole = true, i, role
		case "tool":
			id, err := decodeString(mm["tool_call_id"], f+".tool_call_id")
			if err != nil || id == "" {
				return nil, nil, nil, invalid(f+".tool_call_id", "required, the id of the tool call answered")
			}
			b := aBlock{Type: "tool_result", ToolUseID: anthropicToolID(id)}
			c := mm["content"]
			switch {
			case isNull(c):
			case isString(c):
				b.Content = c
			default:
				blocks, d, err := anthropicText(c, f+".content", nil)
				if err != nil {
					return nil, nil, nil, err
				}
				dropped = append(dropped, d...)
				if len(blocks) > 0 {
					b.Content = marshal(blocks)
				}
			}
			add("user", []aBlock{b})
			began, lastTurn, lastRole = true, i, "user"
		case "function":
			return nil, nil, nil, untranslatable(f+".role", "the deprecated function role does not translate; tool messages do")
		default:
			return nil, nil, nil, invalid(f+".role", "%q is not a Chat Completions role", role)
		}
	}
	if lastTurn < 0 {
		return nil, nil, nil, untranslatable("messages", "Anthropic needs at least one user or assistant message")
	}
	if lastRole == "assistant" {
		return nil, nil, nil, untranslatable(fmt.Sprintf("messages[%d]", lastTurn), "Anthropic would continue a final assistant message (a prefill); OpenAI answers it with a new one")
	}
	for i, m := range out {
		if len(m.Content) == 0 {
			return nil, nil, nil, untranslatable(fmt.Sprintf("messages[%d]", i), "Anthropic takes no message without content (empty text is no content)")
		}
	}
	return system, out, dropped, nil
}

// anthropicText reads content that may hold only text: a string, or an
// array of text parts (and the part types in refused, each refused with
// its reason). Empty text becomes no block: Anthropic refuses empty text
// blocks.
func anthropicText(c json.RawMessage, field string, refused map[string]string) ([]aBlock, []string, error) {
	if isNull(c) {
		return nil, nil, nil
	}
	if isString(c) {
		s, err := decodeString(c, field)
		if err != nil {
			return nil, nil, err
		}
		if s == "" {
			return nil, nil, nil
		}
		return []aBlock{aText(s)}, nil, nil
	}
	parts, err := openAIParts(c, field)
	if err != nil {
		return nil, nil, err
	}
	var out []aBlock
	var dropped []string
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		typ, d, err := partType(p, pf)
		if err != nil {
			return nil, nil, err
		}
		dropped = append(dropped, d...)
		if why, ok := refused[typ]; ok {
			return nil, nil, untranslatable(pf+".type", "%s", why)
		}
		if typ != "text" {
			return nil, nil, untranslatable(pf+".type", "only text parts can go here, not %q", typ)
		}
		s, err := decodeString(p["text"], pf+".text")
		if err != nil {
			return nil, nil, err
		}
		if s != "" {
			out = append(out, aText(s))
		}
	}
	return out, dropped, nil
}

func openAIParts(c json.RawMessage, field string) ([]map[string]json.RawMessage, error) {
	var parts []map[string]json.RawMessage
	if err := json.Unmarshal(c, &parts); err != nil {
		return nil, invalid(field, "want a string or an array of content parts")
	}
	for j, p := range parts {
		if p == nil {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, j), "want a content part object")
		}
	}
	return parts, nil
}

// partType is a part's type, after checking that it has no member this
// translation does not know (prompt_cache_breakpoint, a cache hint, is
// dropped).
func partType(p map[string]json.RawMessage, field string) (string, []string, error) {
	typ, err := decodeString(p["type"], field+".type")
	if err != nil {
		return "", nil, err
	}
	var dropped []string
	for _, k := range sortedKeys(p) {
		switch k {
		case "type", "text", "image_url", "input_audio", "file", "refusal":
		case "prompt_cache_breakpoint":
			if !isNull(p[k]) {
				dropped = append(dropped, field+"."+k)
			}
		default:
			return "", nil, untranslatable(field+"."+k, "not a content part field this translation knows")
		}
	}
	return typ, dropped, nil
}

// anthropicUserContent translates a user message's content: text and
// images.
func anthropicUserContent(c json.RawMessage, field string) ([]aBlock, []string, error) {
	if isNull(c) {
		return nil, nil, invalid(field, "a user message needs content")
	}
	if isString(c) {
		return anthropicText(c, field, nil)
	}
	parts, err := openAIParts(c, field)
	if err != nil {
		return nil, nil, err
	}
	var out []aBlock
	var dropped []string
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		typ, d, err := partType(p, pf)
		if err != nil {
			return nil, nil, err
		}
		dropped = append(dropped, d...)
		switch typ {
		case "text":
			s, err := decodeString(p["text"], pf+".text")
			if err != nil {
				return nil, nil, err
			}
			if s != "" {
				out = append(out, aText(s))
			}
		case "image_url":
			var img struct {
				URL    string  `json:"url"`
				Detail *string `json:"detail"`
			}
			if err := json.Unmarshal(p["image_url"], &img); err != nil || img.URL == "" {
				return nil, nil, invalid(pf+".image_url", "want {url, detail}")
			}
			src, err := anthropicImageSource(img.URL, pf+".image_url.url")
			if err != nil {
				return nil, nil, err
			}
			if img.Detail != nil && *img.Detail != "auto" {
				// Anthropic sizes images itself; the detail only changes
				// the resolution OpenAI looks at.
				dropped = append(dropped, pf+".image_url.detail")
			}
			out = append(out, aBlock{Type: "image", Source: src})
		case "input_audio":
			return nil, nil, untranslatable(pf+".type", "Anthropic takes no audio")
		case "file":
			return nil, nil, untranslatable(pf+".type", "OpenAI file parts (a file id, or file data and a filename) have no faithful Anthropic counterpart")
		default:
			return nil, nil, untranslatable(pf+".type", "%q is not a content part this translation knows", typ)
		}
	}
	return out, dropped, nil
}

var anthropicImageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// anthropicImageSource: a base64 data URL becomes a base64 source, an
// http(s) URL a url source.
func anthropicImageSource(u, field string) (*aSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, found := strings.Cut(rest, ",")
		if !found {
			return nil, invalid(field, "a data URL needs a comma before its data")
		}
		mediaType, b64 := strings.CutSuffix(meta, ";base64")
		if !b64 {
			return nil, untranslatable(field, "Anthropic takes base64 image data only")
		}
		if !slices.Contains(anthropicImageTypes, mediaType) {
			return nil, untranslatable(field, "Anthropic takes JPEG, PNG, GIF and WebP images, not %q", mediaType)
		}
		return &aSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &aSource{Type: "url", URL: u}, nil
	}
	return nil, untranslatable(field, "Anthropic takes an http(s) URL or base64 data")
}

// anthropicToolUses translates an assistant's tool calls into tool_use
// blocks: the arguments, a JSON string, become the input object.
func anthropicToolUses(raw json.RawMessage, field string) ([]aBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	var calls []struct {
		ID       string          `json:"id"`
		Type     string          `json:"type"`
		Function json.RawMessage `json:"function"`
		Custom   json.RawMessage `json:"custom"`
	}
	if err := json.Unmarshal(raw, &calls); err != nil {
		return nil, invalid(field, "want an array of tool calls")
	}
	var out []aBlock
	for j, c := range calls {
		cf := fmt.Sprintf("%s[%d]", field, j)
		if c.Type != "function" {
			return nil, untranslatable(cf+".type", "only function tool calls translate, not %q", c.Type)
		}
		if c.ID == "" {
			return nil, invalid(cf+".id", "required")
		}
		var fn struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		}
		if err := json.Unmarshal(c.Function, &fn); err != nil || fn.Name == "" {
			return nil, invalid(cf+".function", "want {name, arguments}")
		}
		input := json.RawMessage("{}")
		if strings.TrimSpace(fn.Arguments) != "" {
			obj, ok := compactObject(json.RawMessage(fn.Arguments))
			if !ok {
				return nil, untranslatable(cf+".function.arguments", "not a JSON object, which Anthropic's tool_use input must be")
			}
			input = obj
		}
		out = append(out, aBlock{Type: "tool_use", ID: anthropicToolID(c.ID), Name: fn.Name, Input: input})
	}
	return out, nil
}

// anthropicTools translates function tools.
func anthropicTools(raw json.RawMessage) ([]aTool, error) {
	var tools []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, invalid("tools", "want an array of tools")
	}
	var out []aTool
	for i, t := range tools {
		f := fmt.Sprintf("tools[%d]", i)
		typ, err := decodeString(t["type"], f+".type")
		if err != nil {
			return nil, err
		}
		if typ != "function" {
			return nil, untranslatable(f+".type", "only function tools translate, not %q", typ)
		}
		for _, k := range sortedKeys(t) {
			if k != "type" && k != "function" {
				return nil, untranslatable(f+"."+k, "not a tool field this translation knows")
			}
		}
		fn, err := object(t["function"], f+".function")
		if err != nil {
			return nil, err
		}
		at := aTool{}
		for _, k := range sortedKeys(fn) {
			v := fn[k]
			kf := f + ".function." + k
			switch k {
			case "name":
				if at.Name, err = decodeString(v, kf); err != nil {
					return nil, err
				}
			case "description":
				if !isNull(v) {
					if at.Description, err = decodeString(v, kf); err != nil {
						return nil, err
					}
				}
			case "parameters":
				if !isNull(v) {
					schema, ok := compactObject(v)
					if !ok {
						return nil, invalid(kf, "want a JSON Schema object")
					}
					at.InputSchema = schema
				}
			case "strict":
				if !isNull(v) {
					b, err := decodeBool(v, kf)
					if err != nil {
						return nil, err
					}
					at.Strict = &b
				}
			default:
				return nil, untranslatable(kf, "not a function field this translation knows")
			}
		}
		if at.Name == "" {
			return nil, invalid(f+".function.name", "required")
		}
		if at.InputSchema == nil {
			// OpenAI: no parameters is a function that takes none.
			at.InputSchema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, at)
	}
	return out, nil
}

// anthropicToolChoice: auto → auto, none → none, required → any, a named
// function → that tool.
func anthropicToolChoice(raw json.RawMessage) (*aToolChoice, error) {
	if isString(raw) {
		s, _ := decodeString(raw, "tool_choice")
		switch s {
		case "auto":
			return &aToolChoice{Type: "auto"}, nil
		case "none":
			return &aToolChoice{Type: "none"}, nil
		case "required":
			return &aToolChoice{Type: "any"}, nil
		}
		return nil, invalid("tool_choice", `want "none", "auto", "required" or a named tool, not %q`, s)
	}
	var c struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, invalid("tool_choice", "want a string or an object")
	}
	switch c.Type {
	case "function":
		if c.Function.Name == "" {
			return nil, invalid("tool_choice.function.name", "required")
		}
		return &aToolChoice{Type: "tool", Name: c.Function.Name}, nil
	case "allowed_tools", "custom":
		return nil, untranslatable("tool_choice.type", "Anthropic's tool_choice has no %q", c.Type)
	}
	return nil, invalid("tool_choice.type", "%q is not a tool choice", c.Type)
}
