package provider

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid is wrapped by every *InvalidError: the input is not a
	// well-formed body, event or chunk of its own format. A request that
	// fails so is the caller's fault (a 400).
	ErrInvalid = errors.New("provider: invalid input")

	// ErrUntranslatable is wrapped by every *UntranslatableError: the
	// input is valid in its own format, but the other side cannot express
	// it faithfully. A request that fails so can still go to a provider of
	// its own format.
	ErrUntranslatable = errors.New("provider: cannot be translated")

	// ErrStream is wrapped by every *StreamError: the provider reported an
	// error inside a stream it had begun with a 200.
	ErrStream = errors.New("provider: error in the stream")

	// ErrStreamIncomplete is returned by a stream translator's End when
	// the stream stopped before its end marker (message_stop, or a
	// finish_reason and [DONE]).
	ErrStreamIncomplete = errors.New("provider: the stream ended before its end marker")
)

// InvalidError is input that is not well-formed in its own format.
type InvalidError struct {
	Field  string // the JSON path of the offending value, such as "messages[2].role"; "" for the whole body
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "provider: invalid: " + e.Reason
	}
	return fmt.Sprintf("provider: invalid %s: %s", e.Field, e.Reason)
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// UntranslatableError is a valid field the other side has no faithful
// counterpart for.
type UntranslatableError struct {
	Field  string // the JSON path of the field, such as "messages[2].content[0].type"
	Reason string
}

func (e *UntranslatableError) Error() string {
	return fmt.Sprintf("provider: cannot translate %s: %s", e.Field, e.Reason)
}

func (e *UntranslatableError) Unwrap() error { return ErrUntranslatable }

// StreamError is an error the provider sent inside a stream: Anthropic's
// "event: error", or an OpenAI-shaped {"error":{…}} chunk.
type StreamError struct {
	Type    string // Anthropic's error type (overloaded_error, …) or OpenAI's error type
	Code    string // OpenAI's error code, when it sent one
	Message string
}

func (e *StreamError) Error() string {
	kind := e.Type
	if e.Code != "" {
		kind = e.Code
	}
	switch {
	case kind != "" && e.Message != "":
		return fmt.Sprintf("provider: error in the stream: %s: %s", kind, e.Message)
	case kind != "" || e.Message != "":
		return "provider: error in the stream: " + kind + e.Message
	}
	return "provider: error in the stream"
}

func (e *StreamError) Unwrap() error { return ErrStream }

func invalid(field, format string, a ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

func untranslatable(field, format string, a ...any) error {
	return &UntranslatableError{Field: field, Reason: fmt.Sprintf(format, a...)}
}
