package fakeprovider

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names a fault.
type Kind string

const (
	// FaultStatus answers Status with the provider's own error body.
	FaultStatus Kind = "status"
	// FaultQuota answers the provider's billing error: OpenAI 429
	// insufficient_quota, Anthropic 402 billing_error.
	FaultQuota Kind = "quota"
	// FaultHang never answers; the request ends when the client gives up.
	FaultHang Kind = "hang"
	// FaultReset closes the connection with a TCP reset, no response.
	FaultReset Kind = "reset"
	// FaultStreamCut starts a streamed answer and drops the connection
	// after CutAfter chunks, with no end marker.
	FaultStreamCut Kind = "stream_cut"
	// FaultStreamError starts a streamed answer and sends the provider's
	// mid-stream error event after CutAfter chunks.
	FaultStreamError Kind = "stream_error"
	// FaultLatency answers normally after Latency.
	FaultLatency Kind = "latency"
	// FaultStall starts a streamed answer, sends CutAfter chunks and then
	// nothing, with the connection open, until the client gives up (a
	// non-streamed request hangs as with FaultHang).
	FaultStall Kind = "stall"
	// FaultExhausted answers normally, with rate-limit headers that say
	// the requests are exhausted (remaining 0) until Reset: OpenAI's
	// x-ratelimit-remaining-requests and x-ratelimit-reset-requests,
	// Anthropic's anthropic-ratelimit-requests-remaining and -reset. The
	// 429s would start with the next call.
	FaultExhausted Kind = "exhausted"
)

// Fault is one scheduled misbehaviour of a provider.
type Fault struct {
	Kind Kind `json:"kind"`
	// Status for FaultStatus: 400, 401, 403, 404, 408, 413, 429, 500,
	// 502, 503, 504, 529.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as the Retry-After header when set ("7").
	RetryAfter string `json:"retry_after,omitempty"`
	// HTML sends a 5xx as an HTML page instead of JSON (OpenAI's 502s).
	HTML bool `json:"html,omitempty"`
	// Latency is added before any answer (every kind).
	Latency Duration `json:"latency,omitempty"`
	// CutAfter is how many stream chunks (events, for Anthropic; lines,
	// for Ollama) go out before a stream fault: 0 strikes before any. A
	// stream's opening (OpenAI's role chunk, Anthropic's message_start
	// and first block, the Responses API's events up to its first text)
	// counts as one.
	CutAfter int `json:"cut_after,omitempty"`
	// Model, when set, limits the fault to requests for that model (a
	// per-model outage); other requests are answered normally.
	Model string `json:"model,omitempty"`
	// Times applies the fault to the next Times calls, then clears it;
	// 0 keeps it until cleared.
	Times int `json:"times,omitempty"`
	// Reset, for FaultExhausted (required) and FaultStatus (optional),
	// sends rate-limit headers saying the requests are exhausted until
	// then.
	Reset Duration `json:"reset,omitempty"`
	// EchoKey puts the API key the request carried into a status, quota
	// or stream_error fault's error message, as some providers and proxies
	// do.
	EchoKey bool `json:"echo_key,omitempty"`
}

// Validate checks a fault.
func (f Fault) Validate() error {
	switch f.Kind {
	case FaultStatus:
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("status: want 400-599, got %d", f.Status)
		}
	case FaultExhausted:
		if f.Reset <= 0 {
			return fmt.Errorf("reset: required for exhausted, a positive duration like \"2s\"")
		}
	case FaultQuota, FaultHang, FaultReset, FaultStreamCut, FaultStreamError, FaultLatency, FaultStall:
	default:
		return fmt.Errorf("kind %q: want status, quota, hang, reset, stream_cut, stream_error, stall, latency or exhausted", f.Kind)
	}
	if f.Times < 0 || f.CutAfter < 0 || f.Latency < 0 || f.Reset < 0 {
		return fmt.Errorf("times, cut_after, latency and reset must not be negative")
	}
	return nil
}

// Duration is a time.Duration written as "250ms" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "250ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"250ms\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}
