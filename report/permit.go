package report

import (
	"encoding/json"
	"errors"
	"io"
)

// PermitRequest asks for the one probe permit of a traffic-mode
// half-open window (POST /v1/permits). The coordinator runs the permit
// script for the agent, so agents need no Redis write access.
type PermitRequest struct {
	// Agent is the asking agent; its verdict must come in its reports.
	Agent   string `json:"agent"`
	Breaker string `json:"breaker"`
	// Gen and Epoch name the window as the agent's mirror saw it.
	Gen   string `json:"gen"`
	Epoch int64  `json:"epoch"`
	// Nonce is the agent's secret for this permit: the verdict must carry
	// it (Probe.Nonce). Redis keeps only its SHA-1.
	Nonce string `json:"nonce"`
}

// PermitAnswer says whether the permit was granted, with the breaker's
// state.
type PermitAnswer struct {
	Granted bool     `json:"granted"`
	State   Snapshot `json:"state"`
}

// DecodePermit reads one permit request strictly and validates it.
func DecodePermit(r io.Reader) (PermitRequest, error) {
	var p PermitRequest
	if err := decodeStrict(r, &p); err != nil {
		return PermitRequest{}, err
	}
	return p, p.Validate()
}

// Validate checks every field.
func (p PermitRequest) Validate() error {
	switch {
	case !validAgent.MatchString(p.Agent):
		return &Error{Field: "agent", Reason: "want 1-128 of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit"}
	case !ValidName(p.Breaker):
		return &Error{Field: "breaker", Reason: nameReason(p.Breaker)}
	case p.Gen == "" || !validToken.MatchString(p.Gen):
		return &Error{Field: "gen", Reason: "required: want 1-64 of A-Z a-z 0-9 . _ -"}
	case p.Epoch <= 0 || p.Epoch > MaxCount:
		return &Error{Field: "epoch", Reason: "must be positive"}
	case !validToken.MatchString(p.Nonce):
		return &Error{Field: "nonce", Reason: "required: want 1-64 of A-Z a-z 0-9 . _ -"}
	}
	return nil
}

// decodeStrict reads one JSON document: unknown fields, trailing data
// and wrong types are errors.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{Reason: "empty body"}
		}
		return &Error{Reason: "malformed JSON: " + err.Error(), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Reason: "trailing data after the JSON document"}
	}
	return nil
}
