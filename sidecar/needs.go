package sidecar

import (
	"bytes"
	"encoding/json"
	"strings"
)

// needs is what a request needs of a provider, for the chain to skip one
// that declares it cannot serve it (Capabilities).
type needs struct {
	tools, vision, jsonMode bool
	// tokens is the estimated prompt, plus the output tokens the request
	// asks for (max_tokens and the like): what must fit the context
	// window.
	tokens int64
}

// imageTokens is what one image counts for in the estimate: about what a
// 1024×1024 image costs at OpenAI (765 tokens at high detail) and at
// Anthropic (about 1,400).
const imageTokens = 1000

// bytesPerToken: the estimate counts a token per 4 bytes of the body,
// JSON and all, leaving out images' base64 data. English text runs about
// 4 characters a token, so a text prompt is over- rather than
// under-estimated, by its JSON punctuation; code and other languages run
// denser.
const bytesPerToken = 4

// scanNeeds reads what the request needs: tools (it offers tools or
// carries tool calls or results), vision (image parts or blocks), JSON
// mode (response_format or text.format json_object or json_schema), and
// its estimated size in tokens. It walks the body's bytes once, each
// object's members and each array's elements down to maxDepth, decoding
// only the strings it compares. A body with a repeated key in an object
// it walks is decoded instead (the last of the key counts, and only its
// value is walked), as is one too deep or odd to walk, which needs
// nothing but its size.
func (r *request) scanNeeds() needs {
	var n needs
	s := needsScan{n: &n}
	top := skipSpace(r.body, 0)
	s.walk(r.body[top:valueEnd(r.body, top)], 0)
	if s.dup {
		return r.scanNeedsDecoded()
	}
	if tools, _ := r.get("tools"); nonEmptyArray(tools) {
		n.tools = true
	}
	if fns, _ := r.get("functions"); nonEmptyArray(fns) {
		n.tools = true
	}
	format, _ := r.get("response_format")
	if text, _ := r.get("text"); len(text) > 0 && text[0] == '{' {
		format = lastMember(text, "format")
	}
	if len(format) > 0 && format[0] == '{' {
		if t := lastMember(format, "type"); isString(t, "json_object") || isString(t, "json_schema") {
			n.jsonMode = true
		}
	}
	n.vision = s.images > 0
	n.tokens = int64(max(len(r.body)-s.imageBytes, 0)/bytesPerToken) + int64(s.images)*imageTokens + r.maxTokens
	return n
}

// needsScan is one walk of a body for its needs.
type needsScan struct {
	n          *needs
	images     int
	imageBytes int
	// dup: an object walked repeats a key.
	dup bool
}

// maxDepth bounds the walk: no real request nests deeper.
const maxDepth = 64

func (s *needsScan) walk(v []byte, depth int) {
	if depth > maxDepth || s.dup {
		return
	}
	switch v[0] {
	case '[':
		for el := arrayElements(v); ; {
			e, ok := el.next()
			if !ok {
				return
			}
			s.walk(e, depth+1)
		}
	case '{':
		var typ, role, calls []byte
		var keys keySet
		for m := objectMembers(v); ; {
			key, val, _, ok := m.next()
			if !ok {
				break
			}
			if keys.add(key) {
				s.dup = true
				return
			}
			switch string(key) {
			case "type":
				typ = val
			case "role":
				role = val
			case "tool_calls":
				calls = val
			}
			s.walk(val, depth+1)
		}
		switch {
		case isString(typ, "image_url"), isString(typ, "image"), isString(typ, "input_image"):
			s.images++
			s.imageBytes += imageDataBytes(v)
		case isString(typ, "tool_use"), isString(typ, "tool_result"), isString(typ, "function_call"), isString(typ, "function_call_output"):
			s.n.tools = true
		}
		if isString(role, "tool") || nonEmptyArray(calls) {
			s.n.tools = true
		}
	}
}

// lastMember is the value of the object's last member key; nil when it
// has none.
func lastMember(obj []byte, key string) []byte {
	var last []byte
	for m := objectMembers(obj); ; {
		k, v, _, ok := m.next()
		if !ok {
			return last
		}
		if string(k) == key {
			last = v
		}
	}
}

// imageDataBytes is the size of an image part's inline data, decoded: an
// OpenAI data URL (image_url.url, or a Responses image_url string) or an
// Anthropic base64 source.
func imageDataBytes(part []byte) int {
	n := 0
	iu := lastMember(part, "image_url")
	if len(iu) > 0 && iu[0] == '{' {
		iu = lastMember(iu, "url")
	}
	if u := stringValue(iu); bytes.HasPrefix(u, []byte("data:")) {
		n += len(u)
	}
	if src := lastMember(part, "source"); len(src) > 0 && src[0] == '{' {
		n += len(stringValue(lastMember(src, "data")))
	}
	return n
}

// scanNeedsDecoded is scanNeeds on the body decoded into any: for a
// body that repeats a key in an object, whose last value is the only one
// that counts.
func (r *request) scanNeedsDecoded() needs {
	var n needs
	var v any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	imageBytes := 0
	images := 0
	if dec.Decode(&v) == nil {
		w := walker{n: &n, imageBytes: &imageBytes, images: &images}
		w.walk(v, 0)
		top, _ := v.(map[string]any)
		if arr, ok := top["tools"].([]any); ok && len(arr) > 0 {
			n.tools = true
		}
		if arr, ok := top["functions"].([]any); ok && len(arr) > 0 {
			n.tools = true
		}
		format := top["response_format"]
		if t, ok := top["text"].(map[string]any); ok {
			format = t["format"]
		}
		if f, ok := format.(map[string]any); ok {
			if t, _ := f["type"].(string); t == "json_object" || t == "json_schema" {
				n.jsonMode = true
			}
		}
	}
	n.vision = images > 0
	n.tokens = int64(max(len(r.body)-imageBytes, 0)/bytesPerToken) + int64(images)*imageTokens + r.maxTokens
	return n
}

type walker struct {
	n          *needs
	imageBytes *int
	images     *int
}

func (w walker) walk(v any, depth int) {
	if depth > maxDepth {
		return
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.walk(e, depth+1)
		}
	case map[string]any:
		typ, _ := x["type"].(string)
		switch typ {
		case "image_url", "image", "input_image":
			*w.images++
			*w.imageBytes += dataBytes(x)
		case "tool_use", "tool_result", "function_call", "function_call_output":
			w.n.tools = true
		}
		if role, _ := x["role"].(string); role == "tool" {
			w.n.tools = true
		}
		if calls, ok := x["tool_calls"].([]any); ok && len(calls) > 0 {
			w.n.tools = true
		}
		for _, e := range x {
			w.walk(e, depth+1)
		}
	}
}

// dataBytes is the size of an image part's inline data: an OpenAI data
// URL (image_url.url, or a Responses image_url string) or an Anthropic
// base64 source.
func dataBytes(part map[string]any) int {
	n := 0
	if u, ok := part["image_url"].(string); ok && strings.HasPrefix(u, "data:") {
		n += len(u)
	}
	if iu, ok := part["image_url"].(map[string]any); ok {
		if u, _ := iu["url"].(string); strings.HasPrefix(u, "data:") {
			n += len(u)
		}
	}
	if src, ok := part["source"].(map[string]any); ok {
		if d, _ := src["data"].(string); d != "" {
			n += len(d)
		}
	}
	return n
}
