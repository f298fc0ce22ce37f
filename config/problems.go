package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Errors is every problem found in a config file, in the file's order:
// a file with several mistakes names them all at once.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	where := "config"
	if len(es) > 0 && es[0].Path != "" {
		where += " " + es[0].Path
	}
	lines := []string{fmt.Sprintf("%s: %d problems:", where, len(es))}
	for _, e := range es {
		lines = append(lines, "  "+e.located())
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives each problem to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// located is the problem without the file's name: "line 12: field: reason".
func (e *Error) located() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (es Errors) setPath(path string) {
	for _, e := range es {
		e.Path = path
	}
}

// Locator finds where a field is in a YAML file: the line of a dotted
// path ("providers.openai.timeouts.total", "routes[1].chain"), and a
// mapping's keys in the file's order. It is for reporting problems where
// they are; it validates nothing.
type Locator struct {
	root *yaml.Node // the document's top mapping; nil when it did not parse
}

// NewLocator reads data; a file that does not parse locates nothing.
func NewLocator(data []byte) *Locator {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return &Locator{}
	}
	return &Locator{root: doc.Content[0]}
}

// Line is the line of field's key, or of its nearest enclosing key the
// file has; 0 when nothing matches.
func (l *Locator) Line(field string) int {
	return (&problems{root: l.root}).line(field)
}

// Keys lists the keys of the mapping at field (a top-level key), in the
// file's order.
func (l *Locator) Keys(field string) []string { return mapKeys(mapValueNode(l.root, field)) }

// problems collects a file's problems with the line each is on.
type problems struct {
	root *yaml.Node // the document's top mapping; nil when it did not parse
	path string     // the file, when read from one
	list Errors
}

// add records a problem at field (a dotted path such as
// "breakers.openai.failure_rate"), on the line of the deepest part of
// that path the file has.
func (p *problems) add(field, reason string) {
	p.list = append(p.list, &Error{Path: p.path, Field: field, Reason: reason, Line: p.line(field)})
}

// addErr records err, a problem already naming its field.
func (p *problems) addErr(err error) {
	var e *Error
	if errors.As(err, &e) {
		if e.Line == 0 {
			e.Line = p.line(e.Field)
		}
		p.list = append(p.list, e)
		return
	}
	p.list = append(p.list, &Error{Reason: err.Error()})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *Error) int { return a.Line - b.Line })
	return p.list
}

var indexed = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// line finds field in the document: the line of its key, or of its
// nearest enclosing key the file has; 0 when nothing matches.
func (p *problems) line(field string) int {
	n, line := p.root, 0
	if n == nil || field == "" {
		return 0
	}
	for _, part := range strings.Split(field, ".") {
		idx := -1
		if m := indexed.FindStringSubmatch(part); m != nil {
			part = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		next := mapValue(n, part)
		if next == nil {
			return line
		}
		line, n = next.key.Line, next.value
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

type keyValue struct{ key, value *yaml.Node }

func mapValue(n *yaml.Node, key string) *keyValue {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return &keyValue{n.Content[i], n.Content[i+1]}
		}
	}
	return nil
}

// mapKeys lists a mapping's keys in the file's order.
func mapKeys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

var typeErrorLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlProblems turns a decoding error into problems: yaml.v3 reports
// every unknown field and wrong type of a document at once.
func yamlProblems(err error) Errors {
	var out Errors
	for _, d := range DecodeProblems(err) {
		out = append(out, &Error{Reason: d.Reason, Line: d.Line})
	}
	return out
}

// DecodeProblem is one of a YAML decoding error's problems.
type DecodeProblem struct {
	Line   int // 0 when unknown
	Reason string
}

// DecodeProblems splits a yaml.v3 decoding error into its problems (it
// reports every unknown field and wrong type of a document at once).
func DecodeProblems(err error) []DecodeProblem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []DecodeProblem{{Reason: err.Error()}}
	}
	var out []DecodeProblem
	for _, msg := range te.Errors {
		d := DecodeProblem{Reason: msg}
		if m := typeErrorLine.FindStringSubmatch(msg); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Reason = m[2]
		}
		out = append(out, d)
	}
	return out
}
