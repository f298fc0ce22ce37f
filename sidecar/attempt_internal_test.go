package sidecar

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// bareServer is a Server with what an attempt records into, and no
// provider behind it.
func bareServer() *Server {
	return &Server{log: zerolog.Nop(), redact: newRedactor(&Config{}), metrics: newMetrics(func() bool { return false })}
}

func testBreaker(t *testing.T) *agentlib.Breaker {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	ag, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Close() })
	b, err := ag.Breaker("openai")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAttempt_Finish(t *testing.T) {
	b := testBreaker(t)
	p := &Provider{Name: "openai", Timeouts: Timeouts{Total: time.Second}}
	upstream := func(s *Server, result string) float64 {
		var m dto.Metric
		if err := s.metrics.upstream.WithLabelValues("openai", result).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	t.Run("a panic in the call is a failure, and the walk moves on", func(t *testing.T) {
		s := bareServer()
		call, err := b.Begin()
		if err != nil {
			t.Fatal(err)
		}
		evs := make(chan *attempt, 1)
		wk := &walk{s: s, ctx: context.Background(), req: &request{api: APIChat}, evs: evs}
		wk.launch(try{p: p, b: b, call: call}) // no outbound request: do panics at once
		select {
		case a := <-evs:
			if a.kind != attNext || !strings.Contains(a.why, "internal error") {
				t.Fatalf("reported %v %q, want attNext with the panic", a.kind, a.why)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the attempt never reported to the walk")
		}
		if n := upstream(s, "internal_error"); n != 1 {
			t.Fatalf("internal_error counted %v times, want 1", n)
		}
	})

	t.Run("a phase that ends without settling is a failure, recorded once", func(t *testing.T) {
		s := bareServer()
		a := &attempt{s: s, try: try{p: p, b: b}, req: &request{api: APIChat}}
		func() { defer a.finish() }()
		if a.kind != attNext || a.result != "internal_error" || !a.outcome.IsFailure() {
			t.Fatalf("settled %v %q failure=%v", a.kind, a.result, a.outcome.IsFailure())
		}
		func() { defer a.finish() }()
		if n := upstream(s, "internal_error"); n != 1 {
			t.Fatalf("counted %v times, want once", n)
		}
	})

	t.Run("a ready stream's outcome waits for its stream phase", func(t *testing.T) {
		s := bareServer()
		a := &attempt{s: s, try: try{p: p, b: b}, req: &request{api: APIChat, stream: true}, cancel: func(error) {}}
		func() {
			defer a.finish()
			a.kind = attReady
		}()
		if n := upstream(s, "200") + upstream(s, "internal_error"); n != 0 {
			t.Fatalf("a held stream was counted: %v", n)
		}
		a.loseReady()
		if n := upstream(s, "hedge_lost"); n != 1 {
			t.Fatalf("hedge_lost counted %v times, want 1", n)
		}
	})

	t.Run("a panic while a stream is served is a failure, and goes on up", func(t *testing.T) {
		s := bareServer()
		a := &attempt{s: s, try: try{p: p, b: b}, req: &request{api: APIChat, stream: true}, kind: attReady, cancel: func(error) {}}
		var got any
		func() {
			defer func() { got = recover() }()
			a.serving = true
			defer a.finish()
			panic("broken relay")
		}()
		if got != "broken relay" {
			t.Fatalf("recovered %v, want the panic to go on", got)
		}
		if n := upstream(s, "internal_error"); n != 1 || !a.outcome.IsFailure() {
			t.Fatalf("internal_error counted %v times, failure=%v", n, a.outcome.IsFailure())
		}
	})
}

// A whole answer, once read, ends its attempt's context: left running,
// the total timeout's timer held every served attempt's contexts for the
// rest of that timeout, a heap that grew with the rate times two minutes.
func TestAttempt_AWholeAnswerEndsItsContext(t *testing.T) {
	b := testBreaker(t)
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`))
	}))
	t.Cleanup(prov.Close)
	p := &Provider{Name: "openai", Kind: KindOpenAI, BaseURL: prov.URL + "/v1",
		Timeouts: Timeouts{Connect: time.Second, FirstByte: time.Minute, FirstToken: time.Minute, Stall: time.Minute, Total: time.Hour}}
	s := bareServer()
	s.upstreams = map[string]*upstream{"openai": newUpstream(p)}
	req, err := parseRequest(APIChat, []byte(`{"model":"m","messages":[{"role":"user","content":"hello"}]}`), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := s.upstreams["openai"].build(req, "m")
	if err != nil {
		t.Fatal(err)
	}
	call, err := b.Begin()
	if err != nil {
		t.Fatal(err)
	}
	evs := make(chan *attempt, 1)
	wk := &walk{s: s, ctx: context.Background(), req: req, evs: evs}
	wk.launch(try{p: p, b: b, call: call, model: "m", ob: ob})
	var a *attempt
	select {
	case a = <-evs:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt never reported to the walk")
	}
	if a.kind != attReady || !strings.Contains(string(a.body), `"hi"`) {
		t.Fatalf("reported %v %q, want the answer", a.kind, a.body)
	}
	select {
	case <-a.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the served attempt's context is still live: its hour-long total timeout holds it")
	}
}
