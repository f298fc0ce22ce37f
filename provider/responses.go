package provider

import "encoding/json"

// The Responses API's stream (POST /v1/responses with stream: true) is
// passed through, not translated: these read what a relay needs to know
// of its events.

// ResponsesStreamDone reports whether an event of a Responses stream,
// named by its event line (or its data's type), ends the stream:
// response.completed or response.incomplete.
func ResponsesStreamDone(name string) bool {
	return name == "response.completed" || name == "response.incomplete"
}

// ResponsesStreamError reads the error a Responses stream event carries:
// an "error" event ({"type":"error","code","message","param"}) or
// "response.failed" (the failed response's error object, {"code",
// "message"}); nil for any other event. A body that does not read gives
// a StreamError with what could be read: the event's name says it is an
// error either way.
func ResponsesStreamError(name string, data []byte) *StreamError {
	switch name {
	case "error":
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		return &StreamError{Type: "error", Code: e.Code, Message: e.Message}
	case "response.failed":
		var e struct {
			Response struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			} `json:"response"`
		}
		_ = json.Unmarshal(data, &e)
		return &StreamError{Type: "response.failed", Code: e.Response.Error.Code, Message: e.Response.Error.Message}
	}
	return nil
}
