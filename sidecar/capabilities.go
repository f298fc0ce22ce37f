package sidecar

import (
	"fmt"
	"maps"
	"slices"
)

// Capabilities say what a provider, or one of its models, can serve. A
// nil field is not declared: the provider is assumed able. A chain skips
// a provider that declares it cannot serve what a request needs, and
// says so (X-Fusebox-Skipped: ollama=context_window).
type Capabilities struct {
	// Tools: function tools and tool calls, tool results in the
	// conversation.
	Tools *bool
	// Vision: image inputs.
	Vision *bool
	// JSONMode: response_format json_object or json_schema (Chat
	// Completions), text.format (Responses).
	JSONMode *bool
	// ContextWindow in tokens; 0 is not declared. A request whose
	// estimated prompt plus the output tokens it asks for is over it
	// skips the provider.
	ContextWindow int64
}

// over returns c with every field o declares taken from o.
func (c Capabilities) over(o Capabilities) Capabilities {
	if o.Tools != nil {
		c.Tools = o.Tools
	}
	if o.Vision != nil {
		c.Vision = o.Vision
	}
	if o.JSONMode != nil {
		c.JSONMode = o.JSONMode
	}
	if o.ContextWindow > 0 {
		c.ContextWindow = o.ContextWindow
	}
	return c
}

func (c Capabilities) declared() bool {
	return c.Tools != nil || c.Vision != nil || c.JSONMode != nil || c.ContextWindow > 0
}

// lacks names the first thing a request needs that c says it cannot
// serve: "tools", "vision", "json_mode" or "context_window"; "" when none.
func (c Capabilities) lacks(n needs) string {
	switch {
	case n.tools && c.Tools != nil && !*c.Tools:
		return "tools"
	case n.vision && c.Vision != nil && !*c.Vision:
		return "vision"
	case n.jsonMode && c.JSONMode != nil && !*c.JSONMode:
		return "json_mode"
	case c.ContextWindow > 0 && n.tokens > c.ContextWindow:
		return "context_window"
	}
	return ""
}

// CapabilitiesOf is what the provider declares for one of its models:
// its own capabilities, with those the model declares (ModelCapabilities)
// taking precedence.
func (p *Provider) CapabilitiesOf(model string) Capabilities {
	c := p.Capabilities
	if m, ok := p.ModelCapabilities[model]; ok {
		c = c.over(m)
	}
	return c
}

// declaresCapabilities reports whether the provider declares any.
func (p *Provider) declaresCapabilities() bool {
	if p.Capabilities.declared() {
		return true
	}
	for _, m := range p.ModelCapabilities {
		if m.declared() {
			return true
		}
	}
	return false
}

type fileCapabilities struct {
	Tools         *bool  `yaml:"tools"`
	Vision        *bool  `yaml:"vision"`
	JSONMode      *bool  `yaml:"json_mode"`
	ContextWindow *int64 `yaml:"context_window"`
}

func (f fileCapabilities) parse(field string) (Capabilities, error) {
	c := Capabilities{Tools: f.Tools, Vision: f.Vision, JSONMode: f.JSONMode}
	if f.ContextWindow != nil {
		if *f.ContextWindow < 1 {
			return c, &ConfigError{Field: field + ".context_window", Reason: "want a positive number of tokens"}
		}
		c.ContextWindow = *f.ContextWindow
	}
	return c, nil
}

func parseModelCapabilities(field string, fm map[string]fileCapabilities) (map[string]Capabilities, error) {
	if len(fm) == 0 {
		return nil, nil
	}
	out := make(map[string]Capabilities, len(fm))
	for _, m := range sortedKeys(fm) {
		if m == "" || m == "*" {
			return nil, &ConfigError{Field: field, Reason: fmt.Sprintf("%q: name a model of this provider (as sent to it)", m)}
		}
		c, err := fm[m].parse(field + "." + m)
		if err != nil {
			return nil, err
		}
		out[m] = c
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
