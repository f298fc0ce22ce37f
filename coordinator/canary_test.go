package coordinator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fusebox-io/fusebox/agentlib"
	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/statestore"
)

// openAIFake speaks OpenAI's chat completions: a completion when healthy,
// a 503 in OpenAI's error shape when not. It tells canaries (model
// "canary-model") from the app's calls and timestamps every canary.
type openAIFake struct {
	healthy atomic.Bool
	app     atomic.Int64
	mu      sync.Mutex
	canary  []time.Time // guarded by mu
}

func (f *openAIFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &req)
	if req.Model == "canary-model" {
		f.mu.Lock()
		f.canary = append(f.canary, time.Now())
		f.mu.Unlock()
	} else {
		f.app.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	if !f.healthy.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"message":"The server is overloaded or not ready yet.","type":"server_error","param":null,"code":null}}`)
		return
	}
	_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"`+req.Model+`","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}]}`)
}

func (f *openAIFake) canaries() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.canary...)
}

func events(t *testing.T, c *testcluster.Cluster, name string) []statestore.Event {
	t.Helper()
	evs, err := c.Store.Events(context.Background(), name, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first reads better below.
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

func count(evs []statestore.Event, event string) int {
	n := 0
	for _, e := range evs {
		if e.Event == event {
			n++
		}
	}
	return n
}

// TestCanary_OnePerWindowAcrossCoordinators: three coordinators, twenty
// agents, a provider that stays down for five half-open windows and then
// heals.
func TestCanary_OnePerWindowAcrossCoordinators(t *testing.T) {
	fake := &openAIFake{}
	provider := httptest.NewServer(fake)
	t.Cleanup(provider.Close)
	c := testcluster.Start(t, testcluster.Options{Coordinators: 3, ConfigYAML: fmt.Sprintf(`
breakers:
  openai:
    canary_interval: 100ms
    canary_max_interval: 400ms
    canary:
      kind: openai
      url: %s/v1
      model: canary-model
      timeout: 1s
`, provider.URL)})
	resync := 200 * time.Millisecond
	const agents = 20
	breakers := make([]*agentlib.Breaker, agents)
	for i := range agents {
		a, err := agentlib.New(agentlib.Config{
			CoordinatorURL: c.URLs(), RedisURL: c.Redis.URL(), AgentID: fmt.Sprintf("agent-%d", i), Token: testcluster.AgentToken,
			ResyncInterval: resync,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		if breakers[i], err = a.Breaker("openai"); err != nil {
			t.Fatal(err)
		}
	}

	// The app: every agent calls the provider through its breaker.
	errUnavailable := errors.New("HTTP 503")
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, b := range breakers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000 && !stop.Load(); n++ {
				_ = b.Execute(context.Background(), func(ctx context.Context) error {
					resp, err := http.Post(provider.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"app-model"}`))
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					_, _ = io.Copy(io.Discard, resp.Body)
					if resp.StatusCode != 200 {
						return errUnavailable
					}
					return nil
				})
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	testcluster.Eventually(t, 10*time.Second, "the first canary", func() bool { return len(fake.canaries()) > 0 })
	appAtFirstCanary := fake.app.Load()
	testcluster.Eventually(t, 20*time.Second, "five failed probes", func() bool { return count(events(t, c, "openai"), "probe_failed") >= 5 })
	if got := fake.app.Load(); got != appAtFirstCanary {
		t.Errorf("the app reached the provider %d times while the breaker was open or half-open", got-appAtFirstCanary)
	}

	// Exactly one canary per half-open window: each canary the provider
	// saw falls inside one window, and no window holds two.
	evs := events(t, c, "openai")
	type window struct {
		from, to time.Time
		epoch    int
		canaries int
		starts   int
	}
	var windows []*window
	var cur *window
	for _, e := range evs {
		switch e.Event {
		case "half_open":
			cur = &window{from: e.Time, epoch: len(windows) + 1}
			windows = append(windows, cur)
		case "probe_started":
			if cur == nil || e.Reason != "epoch "+strconv.Itoa(cur.epoch) {
				t.Fatalf("probe_started outside its window: %+v", e)
			}
			cur.starts++
		case "probe_failed", "probe_succeeded":
			cur.to = e.Time
			cur = nil
		}
	}
	canaries := fake.canaries()
	for _, at := range canaries {
		placed := false
		for _, w := range windows {
			if !at.Before(w.from.Add(-time.Millisecond)) && (w.to.IsZero() || !at.After(w.to.Add(time.Millisecond))) {
				w.canaries++
				placed = true
				break
			}
		}
		if !placed {
			t.Errorf("a canary at %s fell outside every half-open window", at.Format(time.StampMicro))
		}
	}
	var perWindow []int
	for _, w := range windows[:5] {
		perWindow = append(perWindow, w.canaries)
		if w.canaries != 1 || w.starts != 1 {
			t.Errorf("window %d: %d canaries at the provider, %d probe_started, want 1 and 1", w.epoch, w.canaries, w.starts)
		}
	}
	t.Logf("canaries per window at the provider: %v (3 coordinators, %d agents)", perWindow, agents)

	// The open time doubles per failed probe, capped at 400ms.
	var openFor []int64
	for _, e := range evs {
		if e.Event == "probe_failed" {
			openFor = append(openFor, e.OpenForMS)
		}
	}
	want := []int64{200, 400, 400, 400, 400}
	for i, w := range want {
		if openFor[i] != w {
			t.Fatalf("open times after failed probes = %v, want %v", openFor[:5], want)
		}
	}

	// The provider heals: the next canary closes the breaker, and every
	// agent allows again within the resync interval.
	fake.healthy.Store(true)
	testcluster.Eventually(t, 5*time.Second, "a successful probe", func() bool { return count(events(t, c, "openai"), "probe_succeeded") == 1 })
	closedAt := time.Now()
	testcluster.Eventually(t, 3*resync, "every agent closed", func() bool {
		for _, b := range breakers {
			if b.State().State != statestore.StateClosed {
				return false
			}
		}
		return true
	})
	t.Logf("all %d agents allowed again %s after the good probe was recorded", agents, time.Since(closedAt).Round(time.Millisecond))
	before := fake.app.Load()
	testcluster.Eventually(t, 2*time.Second, "app traffic back on the provider", func() bool { return fake.app.Load() > before+agents })

	// The coordinators' counters agree with the journal.
	for _, cc := range c.Coordinators {
		cc.Stop() // settle the counters
	}
	var failed, succeeded float64
	for _, cc := range c.Coordinators {
		failed += probeCount(t, cc, "failed")
		succeeded += probeCount(t, cc, "succeeded")
	}
	evs = events(t, c, "openai")
	if int(failed) != count(evs, "probe_failed") || succeeded != 1 {
		t.Fatalf("probe counters: %v failed, %v succeeded; journal: %d failed", failed, succeeded, count(evs, "probe_failed"))
	}
}

// probeCount reads fusebox_probes_total{breaker="openai",result=result}.
func probeCount(t *testing.T, cc *testcluster.Coordinator, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cc.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "fusebox_probes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["breaker"] == "openai" && labels["result"] == result {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
