// Package report is the wire format of the outcome reports agents send to
// coordinators (POST /v1/reports) and of the answer they get: the JSON
// shapes, their limits, strict decoding and validation. Agents encode it,
// the API decodes it, the coordinator applies it. It does no I/O.
package report
