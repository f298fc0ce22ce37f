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
// its estimated size in tokens. It walks the decoded body once; a
// request too deep or odd to walk needs nothing but its size.
func (r *request) scanNeeds() needs {
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

// maxDepth bounds the walk: no real request nests deeper.
const maxDepth = 64

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
