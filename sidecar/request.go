package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/fusebox-io/fusebox/provider"
)

// request is one inbound request: the body as received, its top-level
// members, and what the sidecar reads from it. Each provider gets the
// body as is (its model replaced), or translated (provider/).
type request struct {
	api  API
	body []byte
	// top is the body's top-level members in order, their values as sent
	// (slices of body); topBuf holds the first few.
	top    []member
	topBuf [12]member
	// dup: a top-level key appears more than once. The last one counts,
	// as for encoding/json; such a body is encoded again, with only the
	// last, rather than sent as is.
	dup bool

	model  string
	stream bool
	// includeUsage: chat's stream_options.include_usage.
	includeUsage bool
	// maxTokens the request asks for (max_completion_tokens, max_tokens,
	// max_output_tokens); 0 when none.
	maxTokens int64
	// stateful: a Responses request that continues a stored response or
	// conversation (previous_response_id, conversation), which only the
	// provider that stored it has.
	stateful bool
	// version and beta: the anthropic-version and anthropic-beta headers
	// of a messages request, passed on to Anthropic.
	version, beta string
	// needs is what the request needs of a provider, read only on routes
	// whose providers declare capabilities.
	needs needs
}

// member is one top-level member of a request body.
type member struct {
	key []byte          // decoded
	val json.RawMessage // as sent
	at  int             // where val starts in the body
}

// get returns the value of the top-level member key (the last, if the
// body repeats it).
func (r *request) get(key string) (json.RawMessage, bool) {
	for i := len(r.top) - 1; i >= 0; i-- {
		if string(r.top[i].key) == key {
			return r.top[i].val, true
		}
	}
	return nil, false
}

// members is the body's top-level members by key, as encoding/json
// decodes them into a map.
func (r *request) members() map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(r.top))
	for _, t := range r.top {
		m[string(t.key)] = t.val
	}
	return m
}

// requestError is a request the sidecar refuses before any provider sees
// it: a 400 naming the field (param).
type requestError struct{ msg, param string }

func (e *requestError) Error() string { return e.msg }

func refuse(param, format string, a ...any) error {
	return &requestError{msg: fmt.Sprintf(format, a...), param: param}
}

// parseRequest reads and checks an inbound body: it must be valid JSON
// (validJSON, as json.Valid), an object; the members checked are found
// where they lie (jsonscan.go), none decoded beyond what its check needs.
func parseRequest(api API, body []byte, h http.Header) (*request, error) {
	start := skipSpace(body, 0)
	if start == len(body) || body[start] != '{' || !validJSON(body) {
		return nil, refuse("", "the body must be a JSON object: a %s request", apiNoun(api))
	}
	r := &request{api: api, body: body}
	r.top = r.topBuf[:0]
	var keys keySet
	for m := objectMembers(body[start:]); ; {
		key, val, at, ok := m.next()
		if !ok {
			break
		}
		r.dup = keys.add(key) || r.dup
		r.top = append(r.top, member{key: key, val: val, at: start + at})
	}
	if v, _ := r.get("model"); len(v) > 0 && v[0] == '"' {
		r.model = string(stringValue(v))
	}
	if r.model == "" {
		return nil, refuse("model", "model: required, a string")
	}
	if api.streams() {
		if v, ok := r.get("stream"); ok && !isNull(v) {
			switch string(v) {
			case "true":
				r.stream = true
			case "false":
			default:
				return nil, refuse("stream", "stream: want a boolean")
			}
		}
	} else if v, ok := r.get("stream"); ok && !isNull(v) && string(v) != "false" {
		return nil, refuse("stream", "stream: %s are not streamed", apiNoun(api))
	}
	var err error
	switch api {
	case APIChat:
		err = r.parseChat()
	case APIMessages:
		err = r.parseMessages(h)
	case APIEmbeddings:
		if v, ok := r.get("input"); !ok || isNull(v) {
			err = refuse("input", "input: required: a string, an array of strings, or tokens")
		}
	case APIResponses:
		err = r.parseResponses()
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func apiNoun(api API) string {
	switch api {
	case APIMessages:
		return "Messages"
	case APIEmbeddings:
		return "embeddings"
	case APIResponses:
		return "Responses"
	}
	return "chat completions"
}

func (r *request) parseChat() error {
	if err := r.checkRoles(); err != nil {
		return err
	}
	if v, ok := r.get("stream_options"); ok && !isNull(v) {
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if err := json.Unmarshal(v, &so); err != nil {
			return refuse("stream_options", "stream_options: want an object")
		}
		r.includeUsage = so.IncludeUsage
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if v, ok := r.get(k); ok && !isNull(v) {
			n, ok := positiveInt(v)
			if !ok {
				return refuse(k, "%s: want a positive integer", k)
			}
			r.maxTokens = n
		}
	}
	for _, k := range []string{"temperature", "top_p"} {
		if v, ok := r.get(k); ok && !isNull(v) && !isNumber(v) {
			return refuse(k, "%s: want a number", k)
		}
	}
	if v, ok := r.get("stop"); ok && !isNull(v) {
		// A string, or an array of strings (a null among them is
		// taken, as encoding/json takes it).
		good := v[0] == '"'
		if v[0] == '[' {
			good = true
			for el := arrayElements(v); ; {
				e, ok := el.next()
				if !ok {
					break
				}
				if e[0] != '"' && !isNull(e) {
					good = false
					break
				}
			}
		}
		if !good {
			return refuse("stop", "stop: want a string or an array of strings")
		}
	}
	return nil
}

// checkRoles checks that messages is a non-empty array of objects, each
// with a known role. A message's role is read as encoding/json reads a
// struct field: its key in any case, the last that is not null.
func (r *request) checkRoles() error {
	required := func() error {
		return refuse("messages", "messages: required, a non-empty array of {role, content}")
	}
	v, _ := r.get("messages")
	if len(v) == 0 || v[0] != '[' {
		return required() // absent, null (no messages), or not an array
	}
	n, bad, badRole := 0, -1, ""
	for el := arrayElements(v); ; n++ {
		msg, ok := el.next()
		if !ok {
			break
		}
		var role []byte
		switch msg[0] {
		case 'n': // null: a message with no role
		case '{':
			for m := objectMembers(msg); ; {
				key, val, _, ok := m.next()
				if !ok {
					break
				}
				if !bytes.EqualFold(key, []byte("role")) || isNull(val) {
					continue
				}
				if val[0] != '"' {
					return required()
				}
				role = stringValue(val)
			}
		default:
			return required()
		}
		if bad < 0 && !knownRole(role) {
			bad, badRole = n, string(role)
		}
	}
	if n == 0 {
		return required()
	}
	if bad >= 0 {
		return refuse("messages", "messages[%d].role: %q is not a role", bad, badRole)
	}
	return nil
}

func knownRole(role []byte) bool {
	switch string(role) {
	case "system", "developer", "user", "assistant", "tool", "function":
		return true
	}
	return false
}

func (r *request) parseMessages(h http.Header) error {
	if v, _ := r.get("messages"); !nonEmptyArray(v) {
		return refuse("messages", "messages: required, a non-empty array of {role, content}")
	}
	v, ok := r.get("max_tokens")
	if !ok || isNull(v) {
		return refuse("max_tokens", "max_tokens: Field required")
	}
	n, ok := wholeNumber(v)
	if !ok || n < 0 {
		return refuse("max_tokens", "max_tokens: want a non-negative integer")
	}
	r.maxTokens = n
	r.version, r.beta = h.Get("anthropic-version"), h.Get("anthropic-beta")
	if r.version == "" {
		r.version = provider.AnthropicVersion
	}
	return nil
}

func (r *request) parseResponses() error {
	if v, ok := r.get("max_output_tokens"); ok && !isNull(v) {
		n, ok := positiveInt(v)
		if !ok {
			return refuse("max_output_tokens", "max_output_tokens: want a positive integer")
		}
		r.maxTokens = n
	}
	for _, k := range []string{"previous_response_id", "conversation"} {
		if v, ok := r.get(k); ok && !isNull(v) && string(v) != `""` {
			r.stateful = true
		}
	}
	return nil
}

// withModel is the body with the provider's model, and the members in
// set replaced (a nil value deletes one). With nothing to set it is the
// body as sent, the model's value replaced in place when it differs;
// otherwise (or when the body repeats a key) the members are encoded
// again, keys sorted.
func (r *request) withModel(model string, set map[string]json.RawMessage) []byte {
	if set == nil && !r.dup {
		if model == r.model {
			return r.body
		}
		for i := len(r.top) - 1; i >= 0; i-- {
			if t := r.top[i]; string(t.key) == "model" {
				q, _ := json.Marshal(model)
				out := make([]byte, 0, len(r.body)-len(t.val)+len(q))
				out = append(out, r.body[:t.at]...)
				out = append(out, q...)
				return append(out, r.body[t.at+len(t.val):]...)
			}
		}
	}
	out := r.members()
	out["model"], _ = json.Marshal(model)
	for k, v := range set {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out) // raw members are valid JSON: they were decoded from it
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func wholeNumber(v json.RawMessage) (int64, bool) {
	if n, ok := wholeNumberFast(v); ok {
		return n, true
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func positiveInt(v json.RawMessage) (int64, bool) {
	n, ok := wholeNumber(v)
	return n, ok && n >= 1
}
