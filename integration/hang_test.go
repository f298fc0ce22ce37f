//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// shippedConfigs are examples/fusebox.yaml (its defaults and its openai
// breaker) and examples/sidecar.yaml, pointed at the fake provider.
func shippedConfigs(t *testing.T) (coord, side string) {
	t.Helper()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	coord = read("../examples/fusebox.yaml")
	// Keep the defaults and the openai breaker; the other example
	// breakers probe hosts that do not exist here, and the tokens come
	// from FUSEBOX_TOKENS.
	cut := strings.Index(coord, "\n  anthropic:\n")
	if cut < 0 {
		t.Fatal("examples/fusebox.yaml: no anthropic breaker to cut at")
	}
	coord = coord[:cut+1]
	coord = strings.ReplaceAll(coord, "http://127.0.0.1:9090/", "http://fakeprovider:9090/")
	side = read("../examples/sidecar.yaml")
	if !strings.Contains(side, "http://127.0.0.1:9090/") {
		t.Fatal("examples/sidecar.yaml no longer points at the fake provider")
	}
	side = strings.ReplaceAll(side, "http://127.0.0.1:9090/", "http://fakeprovider:9090/")
	return coord, side
}

// openLoad sends rate requests a second, round robin over the sidecars,
// whether or not earlier ones have answered (a hang does not slow the
// arrivals), for at most d.
type openLoad struct {
	mu      sync.Mutex
	results []result // guarded by mu
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (e *env) startOpenLoad(rate int, d time.Duration) *openLoad {
	l := &openLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 40 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer tick.Stop()
		deadline := time.Now().Add(d)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			a, sc := e.agents[i%len(e.agents)], i%len(e.agents)
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				r := chatOnce(client, sc, a.url)
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
			}()
		}
	}()
	e.t.Cleanup(l.halt)
	return l
}

// chatOnce sends one chat request to sidecar sc and records its answer.
func chatOnce(client *http.Client, sc int, url string) result {
	start := time.Now()
	r := result{sidecar: sc, at: start, status: -1}
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(chatBody)))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.status, r.provider = resp.StatusCode, resp.Header.Get("X-Fusebox-Provider")
		if resp.StatusCode != 200 {
			r.err = string(b)
		}
	} else {
		r.err = err.Error()
	}
	r.took = time.Since(start)
	return r
}

func (l *openLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *openLoad) between(from, to time.Time) []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []result
	for _, r := range l.results {
		if !r.at.Before(from) && r.at.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// canaries is how many of provider's calls were canaries.
func (e *env) canaries(provider string) int64 {
	e.t.Helper()
	resp, err := httpClient.Get(e.fake.url + "/_control/stats")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Canaries map[string]int64 }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return st.Canaries[provider]
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// Suite 9: with the shipped example configs, the primary hangs for 60 s
// under 20 requests a second. The cluster trips on the calls still in
// flight, no user waits for the hang, the calls that hung through it do
// not trip the healed breaker, and traffic is back on the primary within
// seconds of the heal.
func TestSuite9_PrimaryHangsShippedConfig(t *testing.T) {
	coord, side := shippedConfigs(t)
	e := newEnv(t, options{coordYAML: coord, sidecarYAML: side, coordEnv: map[string]string{"OPENAI_API_KEY": "sk-it-openai"}})
	const rate = 20
	const hang = 60 * time.Second
	l := e.startOpenLoad(rate, 2*time.Minute+30*time.Second)
	warm := time.Now()
	eventually(t, 30*time.Second, "every sidecar served by the primary", func() bool {
		per := map[int]int{}
		for _, r := range l.between(warm, time.Now()) {
			if r.status == 200 && r.provider == "openai" {
				per[r.sidecar]++
			}
		}
		return per[0] >= 3 && per[1] >= 3 && per[2] >= 3
	})
	calls0, canaries0 := e.calls("openai"), e.canaries("openai")
	e.fault("openai", `{"kind":"hang"}`)
	hangAt := time.Now()
	eventually(t, 20*time.Second, "the cluster trips", func() bool { return e.state("openai") != "closed" })
	time.Sleep(time.Until(hangAt.Add(hang))) // the scenario's 60 s, not a wait for a condition
	calls1, canaries1 := e.calls("openai"), e.canaries("openai")
	e.heal("openai")
	healAt := time.Now()
	var backAt time.Time
	eventually(t, 30*time.Second, "a request served by the primary after the heal", func() bool {
		for _, r := range l.between(healAt, time.Now()) {
			if r.status == 200 && r.provider == "openai" {
				backAt = r.at.Add(r.took)
				return true
			}
		}
		return false
	})
	// The calls that hung through the outage have all ended by now (the
	// sidecars' total timeout is 120 s; first_byte 30 s): let the load run
	// on past that, then count the trips after the heal.
	time.Sleep(time.Until(healAt.Add(35 * time.Second)))
	l.halt()

	var tripAt time.Time
	tripsAfterHeal := 0
	for _, ev := range e.journal("openai") {
		if ev.Event != "trip" {
			continue
		}
		if tripAt.IsZero() && !ev.Timestamp.Before(hangAt.Add(-time.Second)) {
			tripAt = ev.Timestamp
		}
		if ev.Timestamp.After(healAt) {
			tripsAfterHeal++
			t.Logf("trip after the heal: %+v", ev)
		}
	}
	var during []time.Duration
	for _, r := range l.between(hangAt, healAt) {
		during = append(during, r.took)
	}
	failed := 0
	for _, r := range l.between(warm, time.Now()) {
		if r.status != 200 {
			failed++
			if failed <= 3 {
				t.Logf("failed request: %+v", r)
			}
		}
	}
	user := calls1 - calls0 - (canaries1 - canaries0)
	t.Logf("suite 9 (shipped configs, %d req/s, %s hang): %d user calls reached the hanging primary (%d canaries); "+
		"user latency during the hang p50 %s p99 %s max %s over %d requests; trip %s after the hang began; %d trips after the heal; "+
		"first request served by the primary %s after the heal; %d requests failed",
		rate, hang, user, canaries1-canaries0, pct(during, .5).Round(time.Millisecond), pct(during, .99).Round(time.Millisecond),
		pct(during, 1).Round(time.Millisecond), len(during), tripAt.Sub(hangAt).Round(time.Millisecond), tripsAfterHeal,
		backAt.Sub(healAt).Round(time.Millisecond), failed)
	if tripsAfterHeal != 0 {
		t.Fatalf("%d trips after the heal: calls that hung through the outage tripped the healed breaker", tripsAfterHeal)
	}
	if failed != 0 {
		t.Fatalf("%d requests failed although the fallback was up", failed)
	}
	if tripAt.IsZero() || tripAt.Sub(hangAt) > 15*time.Second {
		t.Fatalf("tripped %s after the hang began: in-flight calls past hang_after (2s) did not trip it", tripAt.Sub(hangAt))
	}
	// The hedge (at most 8 s) bounds every user's wait; the first-byte
	// timeout (30 s) never comes into it.
	if worst := pct(during, 1); worst > 8*time.Second+2*time.Second {
		t.Fatalf("a user waited %s during the hang: longer than the hedge allows", worst)
	}
}
