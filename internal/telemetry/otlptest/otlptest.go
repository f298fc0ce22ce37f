// Package otlptest is an OTLP trace receiver for tests: a real
// OTLP/HTTP endpoint (POST /v1/traces, protobuf) or OTLP/gRPC server on
// loopback that decodes what exporters send with the collector's own
// protobuf types and keeps the spans for the test to read.
//
// It is test support: it never validates more than a test asks, and
// keeps every span it received until the test ends.
package otlptest

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, decoded.
type Span struct {
	TraceID, SpanID, ParentID string // hex; ParentID "" for a root
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Attrs                     map[string]any // string, int64, float64, bool
	Events                    []Event
	StatusCode                tracepb.Status_StatusCode
	StatusMessage             string
	Resource                  map[string]any
	Scope                     string
	Start, End                time.Time
}

// Event is one span event.
type Event struct {
	Name  string
	Attrs map[string]any
}

// EventsNamed returns the span's events called name.
func (s Span) EventsNamed(name string) []Event {
	var out []Event
	for _, e := range s.Events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// Receiver collects spans.
type Receiver struct {
	// URL is the base endpoint, for OTEL_EXPORTER_OTLP_ENDPOINT
	// ("http://127.0.0.1:port").
	URL string

	mu       sync.Mutex
	spans    []Span   // guarded by mu
	requests int      // guarded by mu
	bad      []string // guarded by mu
}

// StartHTTP starts an OTLP/HTTP receiver, closed when the test ends.
func StartHTTP(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			r.fail("content type " + ct)
			http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
			return
		}
		var ex collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &ex); err != nil {
			r.fail("undecodable body: " + err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&ex)
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// StartGRPC starts an OTLP/gRPC receiver, stopped when the test ends.
func StartGRPC(tb testing.TB) *Receiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("otlptest: listen: %v", err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String()}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, grpcService{r: r})
	go func() { _ = gs.Serve(ln) }()
	tb.Cleanup(gs.Stop)
	return r
}

type grpcService struct {
	collectortrace.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcService) Export(_ context.Context, ex *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.r.add(ex)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) fail(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bad = append(r.bad, why)
}

func (r *Receiver) add(ex *collectortrace.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range ex.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Name: s.GetName(), Kind: s.GetKind(), Attrs: attrs(s.GetAttributes()),
					StatusCode: s.GetStatus().GetCode(), StatusMessage: s.GetStatus().GetMessage(),
					Resource: res, Scope: ss.GetScope().GetName(),
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.ParentID = hex.EncodeToString(p)
				}
				for _, e := range s.GetEvents() {
					sp.Events = append(sp.Events, Event{Name: e.GetName(), Attrs: attrs(e.GetAttributes())})
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.spans = append(r.spans, got...)
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = x.IntValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = x.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = x.BoolValue
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// Spans returns every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests is how many export requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Problems lists the requests the receiver refused, and why.
func (r *Receiver) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// WaitFor polls the received spans until cond holds, and returns them;
// it fails the test after d, printing what arrived.
func (r *Receiver) WaitFor(tb testing.TB, d time.Duration, what string, cond func([]Span) bool) []Span {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		spans := r.Spans()
		if cond(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			tb.Fatalf("otlptest: not within %s: %s; received %d spans (problems %v):\n%s", d, what, len(spans), r.Problems(), Dump(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Dump is the spans, one a line, for a failure message.
func Dump(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s trace=%s span=%s parent=%s kind=%s status=%s attrs=%s", s.Name, s.TraceID, s.SpanID, s.ParentID, s.Kind, s.StatusCode, sorted(s.Attrs))
		for _, e := range s.Events {
			fmt.Fprintf(&b, " event:%s%s", e.Name, sorted(e.Attrs))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func sorted(m map[string]any) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}
