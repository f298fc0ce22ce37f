package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/report"
	"github.com/fusebox-io/fusebox/statestore"
)

// A forged probe verdict, through the API: a canary-mode
// breaker half-open, its canary running on a coordinator; an agent
// token's report claiming the window's verdict is refused, with a nonce
// or without, and the breaker stays half-open.
func TestServer_AForgedProbeVerdictIsRefused(t *testing.T) {
	hang := make(chan struct{})
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(provider.Close)
	t.Cleanup(func() { close(hang) })
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: fmt.Sprintf(`
breakers:
  canb:
    canary_interval: 50ms
    probe_timeout: 20s
    canary:
      kind: http
      url: %s/
      timeout: 10s
`, provider.URL)})
	h := c.Coordinators[0].API
	c.Trip(t, "canb", 5)
	var snap statestore.Snapshot
	testcluster.Eventually(t, 5*time.Second, "half-open with its canary running", func() bool {
		evs, err := c.Store.Events(context.Background(), "canb", 1, "")
		snap = c.Snapshot(t, "canb")
		return err == nil && len(evs) == 1 && evs[0].Event == "probe_started" && snap.State == statestore.StateHalfOpen
	})
	noNonce := fmt.Sprintf(`{"agent":"forger","breakers":[{"name":"canb","probe":{"epoch":%d,"ok":true}}]}`, snap.Epoch)
	if rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, noNonce); rec.Code != http.StatusBadRequest {
		t.Fatalf("a verdict with no nonce: %d %s, want 400", rec.Code, rec.Body)
	}
	withNonce := fmt.Sprintf(`{"agent":"forger","breakers":[{"name":"canb","probe":{"gen":%q,"epoch":%d,"ok":true,"nonce":"guessed"}}]}`, snap.Gen, snap.Epoch)
	rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, withNonce)
	if rec.Code != 200 {
		t.Fatalf("a verdict with a made-up nonce: %d %s", rec.Code, rec.Body)
	}
	resp := decode[report.Response](t, rec)
	if len(resp.Breakers) != 1 || resp.Breakers[0].Probe != report.ProbeRefused || resp.Breakers[0].State != statestore.StateHalfOpen {
		t.Fatalf("answer %+v, want the probe refused and the breaker still half-open", resp)
	}
	// Nor can an agent get a permit for a canary-mode window.
	permit := fmt.Sprintf(`{"agent":"forger","breaker":"canb","gen":%q,"epoch":%d,"nonce":"mine"}`, snap.Gen, snap.Epoch)
	if rec := call(t, h, "POST", "/v1/permits", testcluster.AgentToken, permit); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"granted":false`) {
		t.Fatalf("a permit for a canary-mode window: %d %s", rec.Code, rec.Body)
	}
	evs, _ := c.Store.Events(context.Background(), "canb", 10, "")
	for _, e := range evs {
		if e.Event == "probe_succeeded" {
			t.Fatalf("the forged verdict closed the breaker: %+v", e)
		}
	}
	if s := c.Snapshot(t, "canb"); s.State != statestore.StateHalfOpen || s.Epoch != snap.Epoch {
		t.Fatalf("after the forgeries: %+v", s)
	}
}
