package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// call sends one request through the server's ServeHTTP.
func call(t *testing.T, h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if path == "/v1/events/stream" {
		// A stream never ends by itself: hang up after a moment.
		ctx, cancel := context.WithTimeout(req.Context(), 50*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return v
}

func TestServer_EveryRouteWithEveryRole(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	h := c.Coordinators[0].API
	c.Trip(t, "openai", 5)
	c.Trip(t, "doomed", 1)
	tokens := map[string]string{
		"none": "", "bogus": "not-a-token-of-ours-at-all", "read": testcluster.ReadToken,
		"agent": testcluster.AgentToken, "admin": testcluster.AdminToken,
	}
	const (
		open = iota
		read
		agent
		admin
	)
	routes := []struct {
		method, path, body string
		need               int
	}{
		{"GET", "/healthz", "", open},
		{"GET", "/readyz", "", open},
		{"GET", "/openapi.json", "", open},
		{"GET", "/metrics", "", open},
		{"GET", "/", "", open},
		{"GET", "/assets/app.js", "", open},
		{"POST", "/v1/reports", `{"agent":"a1","breakers":[{"name":"ollama","ok":1}]}`, agent},
		{"POST", "/v1/permits", `{"agent":"a1","breaker":"openai","gen":"1.2","epoch":1,"nonce":"n1"}`, agent},
		{"DELETE", "/v1/breakers/doomed", `{"reason":"matrix"}`, admin},
		{"GET", "/v1/breakers", "", read},
		{"GET", "/v1/breakers/openai", "", read},
		{"POST", "/v1/breakers/openai/force-open", `{"reason":"matrix"}`, admin},
		{"POST", "/v1/breakers/openai/force-closed", `{"reason":"matrix"}`, admin},
		{"POST", "/v1/breakers/openai/release", "", admin},
		{"POST", "/v1/breakers/openai/reset", `{"reason":"matrix"}`, admin},
		{"GET", "/v1/breakers/openai/events", "", read},
		{"GET", "/v1/events/stream", "", read},
		{"GET", "/v1/agents", "", read},
		{"GET", "/v1/breakers/openai/rates", "", read},
		{"GET", "/v1/rates?names=openai,other", "", read},
		{"GET", "/v1/timelines?names=openai", "", read},
		{"GET", "/v1/routes", "", read},
	}
	for _, r := range routes {
		for who, tok := range tokens {
			t.Run(fmt.Sprintf("%s %s as %s", r.method, r.path, who), func(t *testing.T) {
				rec := call(t, h, r.method, r.path, tok, r.body)
				want := http.StatusOK
				switch {
				case r.need == open:
				case who == "none" || who == "bogus":
					want = http.StatusUnauthorized
				case r.need == agent && who != "agent", r.need == admin && who != "admin":
					want = http.StatusForbidden
				}
				if rec.Code != want {
					t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
				}
				if want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
				if want >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
					t.Fatalf("error as %q", rec.Header().Get("Content-Type"))
				}
			})
		}
	}
}

func TestServer_Overrides(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "breakers:\n  openai:\n    open_timeout: 1m\n"})
	h := c.Coordinators[0].API
	adm := testcluster.AdminToken

	t.Run("force open with a ttl, seen in the breaker and the journal", func(t *testing.T) {
		rec := call(t, h, "POST", "/v1/breakers/openai/force-open", adm, `{"reason":"provider incident #42","ttl":"15m"}`)
		if rec.Code != 200 {
			t.Fatal(rec.Body)
		}
		b := decode[api.BreakerView](t, rec)
		if b.Effective != "forced_open" || b.OverrideUntil == nil || time.Until(*b.OverrideUntil) < 14*time.Minute ||
			b.LastTransition.Actor != "test-admin" || b.LastTransition.Reason != "provider incident #42" || b.Policy.OpenTimeout != "1m0s" {
			t.Fatalf("after force-open: %+v", b)
		}
		ev := decode[struct {
			Events []api.EventView `json:"events"`
		}](t, call(t, h, "GET", "/v1/breakers/openai/events?limit=1", testcluster.ReadToken, ""))
		if len(ev.Events) != 1 || ev.Events[0].Transition.Event != "force_open" || ev.Events[0].Actor != "test-admin" || ev.Events[0].Reason != "provider incident #42" {
			t.Fatalf("journal = %+v", ev.Events)
		}
	})
	t.Run("release and reset bring it back closed", func(t *testing.T) {
		b := decode[api.BreakerView](t, call(t, h, "POST", "/v1/breakers/openai/release", adm, ""))
		if b.Effective != "closed" || b.LastTransition.Reason != "released" {
			t.Fatalf("after release: %+v", b)
		}
		c.Trip(t, "openai", 5)
		b = decode[api.BreakerView](t, call(t, h, "GET", "/v1/breakers/openai", testcluster.ReadToken, ""))
		if b.Effective != "open" || b.OpenUntil == nil || b.FailureCount != 5 || b.LastTransition.LastError != "tripped by test" {
			t.Fatalf("tripped: %+v", b)
		}
		b = decode[api.BreakerView](t, call(t, h, "POST", "/v1/breakers/openai/reset", adm, `{"reason":"fixed upstream"}`))
		if b.Effective != "closed" || b.FailureCount != 0 || b.LastTransition.Reason != "fixed upstream" {
			t.Fatalf("after reset: %+v", b)
		}
	})
	t.Run("force a breaker no agent has reported yet", func(t *testing.T) {
		if rec := call(t, h, "GET", "/v1/breakers/brand-new", testcluster.ReadToken, ""); rec.Code != 404 {
			t.Fatalf("unknown breaker: %d", rec.Code)
		}
		if rec := call(t, h, "POST", "/v1/breakers/brand-new/force-closed", adm, `{"reason":"pre-emptive"}`); rec.Code != 200 {
			t.Fatal(rec.Body)
		}
		list := decode[struct {
			Breakers []api.BreakerView `json:"breakers"`
		}](t, call(t, h, "GET", "/v1/breakers", testcluster.ReadToken, ""))
		found := false
		for _, b := range list.Breakers {
			found = found || (b.Name == "brand-new" && b.Effective == "forced_closed")
		}
		if !found {
			t.Fatalf("list = %+v", list.Breakers)
		}
	})
	t.Run("bad requests are 4xx and change nothing", func(t *testing.T) {
		before := c.Snapshot(t, "openai")
		for _, tc := range []struct {
			method, path, body string
			want               int
		}{
			{"POST", "/v1/breakers/openai/force-open", ``, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":""}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"x","ttl":"forever"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"x","ttl":"0s"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"x","ttl":"9999h"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"x","actor":"root"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"x"} {"reason":"y"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"` + strings.Repeat("r", 300) + `"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `{"reason":"line\nbreak"}`, 400},
			{"POST", "/v1/breakers/openai/force-open", `[]`, 400},
			{"POST", "/v1/breakers/open%20ai/force-open", `{"reason":"x"}`, 400},
			{"POST", "/v1/breakers/openai/release", `{"ttl":"1m"}`, 400},
			{"GET", "/v1/breakers/openai/events?limit=0", ``, 400},
			{"GET", "/v1/breakers/openai/events?limit=abc", ``, 400},
			{"GET", "/v1/breakers/openai/events?before=drop-table", ``, 400},
			{"GET", "/v1/breakers/nobody/events", ``, 404},
			{"GET", "/v1/events/stream?replay=9999", ``, 400},
			{"GET", "/v1/events/stream?last_event_id=garbage", ``, 400},
			{"GET", "/assets/..%2f..%2fetc%2fpasswd", ``, 404},
			{"DELETE", "/v1/breakers/openai", ``, 400},
			{"DELETE", "/v1/breakers/openai", `{"reason":"x","ttl":"1m"}`, 400},
			{"DELETE", "/v1/breakers/open%20ai", `{"reason":"x"}`, 400},
			{"DELETE", "/v1/breakers/nobody", `{"reason":"x"}`, 404},
			{"PUT", "/v1/breakers/openai", ``, 405},
			{"GET", "/v1/breakers?limit=0", ``, 400},
			{"GET", "/v1/breakers?limit=5000", ``, 400},
			{"GET", "/v1/breakers?cursor=a%20b", ``, 400},
		} {
			rec := call(t, h, tc.method, tc.path, adm, tc.body)
			if rec.Code != tc.want {
				t.Errorf("%s %s %q: %d, want %d: %s", tc.method, tc.path, tc.body, rec.Code, tc.want, rec.Body)
			}
		}
		if after := c.Snapshot(t, "openai"); after != before {
			t.Fatalf("state moved: %+v -> %+v", before, after)
		}
	})
}

func TestServer_EventsPaging(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	h := c.Coordinators[0].API
	for i := range 5 {
		if rec := call(t, h, "POST", "/v1/breakers/paged/reset", testcluster.AdminToken, fmt.Sprintf(`{"reason":"step %d"}`, i)); rec.Code != 200 {
			t.Fatal(rec.Body)
		}
	}
	type page struct {
		Events     []api.EventView `json:"events"`
		NextBefore string          `json:"next_before"`
	}
	var reasons []string
	before := ""
	for range 3 {
		p := decode[page](t, call(t, h, "GET", "/v1/breakers/paged/events?limit=2&before="+before, testcluster.ReadToken, ""))
		for _, e := range p.Events {
			reasons = append(reasons, e.Reason)
		}
		if p.NextBefore == "" {
			break
		}
		before = p.NextBefore
	}
	if strings.Join(reasons, ",") != "step 4,step 3,step 2,step 1,step 0" {
		t.Fatalf("pages gave %v", reasons)
	}
}

// sseClient reads a real event stream.
type sseEvent struct{ id, event, data string }

func openStream(t *testing.T, url, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+testcluster.ReadToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.data != "" {
					out <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
	}()
	return out, cancel
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

func TestServer_EventStreamResumes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	url := c.Coordinators[0].URL
	admin := func(path, reason string) {
		if rec := call(t, c.Coordinators[0].API, "POST", path, testcluster.AdminToken, `{"reason":"`+reason+`"}`); rec.Code != 200 {
			t.Fatal(rec.Body)
		}
	}
	stream, stop := openStream(t, url, "")
	// The stream is live once subscribed; an event can be missed only
	// before that, so retry the first until it shows.
	var first sseEvent
	testcluster.Eventually(t, 5*time.Second, "the first live event", func() bool {
		admin("/v1/breakers/a/force-open", "one")
		select {
		case first = <-stream:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	var ev api.EventView
	if err := json.Unmarshal([]byte(first.data), &ev); err != nil || first.event != "force_open" || ev.Breaker != "a" || first.id != ev.Cursor {
		t.Fatalf("first event %+v (%v)", first, err)
	}
	stop()
	// Missed while disconnected:
	admin("/v1/breakers/b/force-closed", "two")
	admin("/v1/breakers/a/release", "three")
	resumed, stop2 := openStream(t, url, first.id)
	defer stop2()
	seen := map[string]bool{}
	var reasons []string
	for len(reasons) < 2 {
		e := next(t, resumed)
		if seen[e.id] || e.id == first.id {
			t.Fatalf("event %s sent twice or the resume point repeated", e.id)
		}
		seen[e.id] = true
		var v api.EventView
		_ = json.Unmarshal([]byte(e.data), &v)
		reasons = append(reasons, v.Reason)
	}
	// Both missed events, once each; two breakers' events in the same
	// millisecond are ordered by breaker name, not by when they happened.
	slices.Sort(reasons)
	if strings.Join(reasons, ",") != "three,two" {
		t.Fatalf("resumed with %v, want the two missed events", reasons)
	}
	// And it is live after the backlog.
	admin("/v1/breakers/b/release", "four")
	var v api.EventView
	_ = json.Unmarshal([]byte(next(t, resumed).data), &v)
	if v.Reason != "four" {
		t.Fatalf("live after resume: %+v", v)
	}
}

func TestServer_Metrics(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	a, err := agentlib.New(agentlib.Config{CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), Token: testcluster.AgentToken, AgentID: "metrics-agent"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := a.Breaker("openai")
	for range 5 {
		done, err := b.Allow()
		if err == nil {
			done(agentlib.Failure(fmt.Errorf("HTTP 503")))
		}
	}
	testcluster.Eventually(t, 3*time.Second, "tripped", func() bool { return c.Snapshot(t, "openai").State == statestore.StateOpen })
	h := c.Coordinators[0].API
	var body string
	// Counters move after each response is written, and the state
	// follows the change channel: poll until the reports, the heartbeat
	// and the trip are in.
	testcluster.Eventually(t, 3*time.Second, "the agent's reports and heartbeat counted", func() bool {
		body = call(t, h, "GET", "/metrics", "", "").Body.String()
		return strings.Contains(body, "fusebox_agents_seen 1") && strings.Contains(body, `fusebox_outcomes_total{result="fail"} 5`) &&
			strings.Contains(body, `route="/v1/reports",status="200"`) &&
			// The coordinator's view follows the change channel.
			strings.Contains(body, `fusebox_breaker_state{breaker="openai",state="open"} 1`)
	})
	for _, want := range []string{
		`fusebox_breaker_state{breaker="openai",state="open"} 1`,
		`fusebox_breaker_state_omitted 0`,
		`fusebox_transitions_total{from="closed",reason="consecutive_failures",to="open"}`,
		`fusebox_reports_ingested_total`,
		`fusebox_outcomes_total{result="fail"} 5`,
		`fusebox_agents_degraded 0`,
		`fusebox_http_requests_total{method="POST",route="/v1/reports",status="200"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// One series per breaker: the state it is in.
	if n := strings.Count(body, `fusebox_breaker_state{breaker="openai"`); n != 1 {
		t.Errorf("%d fusebox_breaker_state series for openai, want 1", n)
	}
}

func TestServer_OpenAPIDescribesEveryRoute(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	h := c.Coordinators[0].API
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	rec := call(t, h, "GET", "/openapi.json", "", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	routes := h.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		p := r.OpenAPIPath()
		ops, ok := doc.Paths[p]
		if !ok {
			t.Errorf("route %s %s is not in openapi.json (as %s)", r.Method, r.Path, p)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("openapi.json has %s but not its %s", p, r.Method)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			found := false
			for _, r := range routes {
				found = found || (r.OpenAPIPath() == p && strings.ToLower(r.Method) == m)
			}
			if !found {
				t.Errorf("openapi.json describes %s %s, which the server does not serve", m, p)
			}
		}
	}
}

// TestOverride_ReachesAgentsAcrossCoordinators: an override made through
// one coordinator reaches an agent that talks to the other one within the
// resync interval, and its ttl ends it on time, cluster-wide.
func TestOverride_ReachesAgentsAcrossCoordinators(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Coordinators: 2})
	resync := 200 * time.Millisecond
	a, err := agentlib.New(agentlib.Config{
		CoordinatorURL: c.Coordinators[1].URL, RedisURL: c.Redis.URL(), Token: testcluster.AgentToken,
		AgentID: "far-agent", ResyncInterval: resync,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := a.Breaker("openai")
	testcluster.Eventually(t, 2*time.Second, "agent synced", func() bool { _, err := b.Allow(); return err == nil })

	sent := time.Now() // the ttl runs from when Redis applied it, a moment after this
	rec := call(t, c.Coordinators[0].API, "POST", "/v1/breakers/openai/force-open", testcluster.AdminToken, `{"reason":"vendor maintenance","ttl":"1s"}`)
	if rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	forcedAt := time.Now()
	testcluster.Eventually(t, resync+time.Second, "the agent denies with ErrForcedOpen", func() bool {
		_, err := b.Allow()
		return errors.Is(err, agentlib.ErrForcedOpen)
	})
	t.Logf("agent saw the override %s after it was made through the other coordinator", time.Since(forcedAt).Round(time.Millisecond))
	testcluster.Eventually(t, 3*time.Second, "the ttl ends the override", func() bool {
		_, err := b.Allow()
		return err == nil
	})
	lasted := time.Since(sent)
	t.Logf("the 1s override ended for the agent after %s", lasted.Round(time.Millisecond))
	if lasted < time.Second {
		t.Fatalf("the override ended after %s, before its 1s ttl", lasted)
	}
	evs, err := c.Store.Events(context.Background(), "openai", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 2 || evs[0].Event != "override_expired" || evs[1].Event != "force_open" ||
		evs[1].Actor != "test-admin" || evs[1].Reason != "vendor maintenance" {
		t.Fatalf("journal = %+v", evs)
	}
}
