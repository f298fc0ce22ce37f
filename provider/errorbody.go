package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Shape is the error-body format a provider answered in.
type Shape int

const (
	// ShapeUnknown: not a JSON error body of any provider (an HTML 502
	// page, an empty body, a success body).
	ShapeUnknown Shape = iota
	// ShapeOpenAI: {"error":{"message","type","param","code"}}, code a
	// string, a number or null. OpenAI-compatible servers, Ollama's /v1
	// endpoints and OpenAI's mid-stream error chunks use it too.
	ShapeOpenAI
	// ShapeAnthropic: {"type":"error","error":{"type","message"}}.
	ShapeAnthropic
	// ShapeOllama: {"error":"…"}, Ollama's native API.
	ShapeOllama
)

func (s Shape) String() string {
	switch s {
	case ShapeOpenAI:
		return "openai"
	case ShapeAnthropic:
		return "anthropic"
	case ShapeOllama:
		return "ollama"
	}
	return "unknown"
}

// ErrorBody is a provider's error body, read.
type ErrorBody struct {
	Shape   Shape
	Type    string          // OpenAI's or Anthropic's error type
	Code    json.RawMessage // OpenAI's code as sent: a JSON string, a number, or nil
	Param   string          // OpenAI's param, when it is a string
	Message string
}

// CodeString is Code as text: the string, or the number's digits; "" when
// there is none.
func (e ErrorBody) CodeString() string {
	if len(e.Code) == 0 || string(e.Code) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(e.Code, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(e.Code, &n) == nil {
		return n.String()
	}
	return ""
}

// ParseError reads an error body in OpenAI's, Anthropic's or Ollama's
// shape. Anything else (an HTML page from a proxy, a truncated body) gives
// ShapeUnknown and empty fields: the status is then all there is.
func ParseError(body []byte) ErrorBody {
	var top struct {
		Type  json.RawMessage `json:"type"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &top) != nil || isNull(top.Error) {
		return ErrorBody{}
	}
	var msg string
	if json.Unmarshal(top.Error, &msg) == nil {
		return ErrorBody{Shape: ShapeOllama, Message: msg}
	}
	var d struct {
		Type    json.RawMessage `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   json.RawMessage `json:"param"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(top.Error, &d) != nil {
		return ErrorBody{}
	}
	e := ErrorBody{Shape: ShapeOpenAI}
	var topType string
	if json.Unmarshal(top.Type, &topType) == nil && topType == "error" {
		e.Shape = ShapeAnthropic
	}
	_ = json.Unmarshal(d.Type, &e.Type)
	_ = json.Unmarshal(d.Param, &e.Param)
	_ = json.Unmarshal(d.Message, &e.Message)
	if c := bytes.TrimSpace(d.Code); len(c) > 0 && string(c) != "null" {
		var s string
		var n json.Number
		if json.Unmarshal(c, &s) == nil || json.Unmarshal(c, &n) == nil {
			e.Code = json.RawMessage(append([]byte(nil), c...))
		}
	}
	return e
}

// OpenAIErrorBody is an error in OpenAI's shape:
// {"error":{"message","type","param","code"}}, param and code null when
// empty.
func OpenAIErrorBody(msg, typ, code, param string) []byte {
	var c json.RawMessage
	if code != "" {
		c = marshal(code)
	}
	return openAIErrorBody(msg, typ, c, param)
}

func openAIErrorBody(msg, typ string, code json.RawMessage, param string) []byte {
	type detail struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   *string         `json:"param"`
		Code    json.RawMessage `json:"code"`
	}
	d := detail{Message: msg, Type: typ, Code: code}
	if len(code) == 0 {
		d.Code = json.RawMessage("null")
	}
	if param != "" {
		d.Param = &param
	}
	return marshal(struct {
		Error detail `json:"error"`
	}{d})
}

// AnthropicErrorBody is an error in Anthropic's shape:
// {"type":"error","error":{"type","message"}}.
func AnthropicErrorBody(typ, msg string) []byte {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	return marshal(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{typ, msg}})
}

// Anthropic's error types, one per status it answers with.
var anthropicErrorTypes = map[int]string{
	http.StatusBadRequest:            "invalid_request_error",
	http.StatusUnauthorized:          "authentication_error",
	http.StatusPaymentRequired:       "billing_error",
	http.StatusForbidden:             "permission_error",
	http.StatusNotFound:              "not_found_error",
	http.StatusRequestEntityTooLarge: "request_too_large",
	http.StatusTooManyRequests:       "rate_limit_error",
	http.StatusInternalServerError:   "api_error",
	529:                              "overloaded_error",
}

// AnthropicErrorType is Anthropic's error type for a status: the
// documented one (400 invalid_request_error, 401 authentication_error,
// 402 billing_error, 403 permission_error, 404 not_found_error, 413
// request_too_large, 429 rate_limit_error, 500 api_error, 529
// overloaded_error); another 5xx is api_error, another 4xx
// invalid_request_error.
func AnthropicErrorType(status int) string {
	if t, ok := anthropicErrorTypes[status]; ok {
		return t
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// AnthropicErrorStatus is the status Anthropic answers an error type with
// (the reverse of AnthropicErrorType), so that an error event in a stream,
// which has no status, can be classified like a response; 0 for an
// unknown type.
func AnthropicErrorStatus(typ string) int {
	for status, t := range anthropicErrorTypes {
		if t == typ {
			return status
		}
	}
	return 0
}

// ToOpenAIError rewrites an error body of any shape in OpenAI's, for an
// OpenAI client served by another provider. The message is kept (the
// status text when there is none); the type is the source's, else
// Anthropic's name for the status; code and param are kept from an
// OpenAI-shaped source.
func ToOpenAIError(status int, body []byte) []byte {
	e := ParseError(body)
	msg := e.Message
	if msg == "" {
		msg = statusText(status)
	}
	typ := e.Type
	if typ == "" || typ == "error" {
		typ = AnthropicErrorType(status)
	}
	return openAIErrorBody(msg, typ, e.Code, e.Param)
}

// ToAnthropicError rewrites an error body of any shape in Anthropic's, for
// an Anthropic client served by another provider. The type follows the
// status (AnthropicErrorType), except that OpenAI's insufficient_quota (a
// 429 that is billing, not a rate limit) becomes billing_error, and an
// Anthropic-shaped source keeps its own.
func ToAnthropicError(status int, body []byte) []byte {
	e := ParseError(body)
	msg := e.Message
	if msg == "" {
		msg = statusText(status)
	}
	typ := AnthropicErrorType(status)
	switch {
	case e.Shape == ShapeAnthropic && e.Type != "":
		typ = e.Type
	case e.CodeString() == "insufficient_quota" || e.Type == "insufficient_quota":
		typ = "billing_error"
	}
	return AnthropicErrorBody(typ, msg)
}

// OpenAIErrorEvent is an error to end an OpenAI stream with: a data line
// holding an OpenAI error body (and no [DONE] after it).
func OpenAIErrorEvent(msg, typ, code string) Event {
	return Event{Data: OpenAIErrorBody(msg, typ, code, "")}
}

// AnthropicErrorEvent is an error to end an Anthropic stream with:
// "event: error" and an Anthropic error body.
func AnthropicErrorEvent(typ, msg string) Event {
	return Event{Name: "error", Data: AnthropicErrorBody(typ, msg)}
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	if status == 529 {
		return "Overloaded"
	}
	return "HTTP " + strconv.Itoa(status)
}
