package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fusebox-io/fusebox/api"
	"github.com/fusebox-io/fusebox/internal/testcluster"
)

type breakerPage struct {
	Breakers   []api.BreakerView `json:"breakers"`
	NextCursor string            `json:"next_cursor"`
}

func TestBreakers_Groups(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
	h := c.Coordinators[0].API
	names := []string{"anthropic", "anthropic.claude-haiku-4-5", "openai", "openai-eu", "openai.gpt-4o", "openai.gpt-4o-mini", "openai.o3", "openai_x", "openaj", "zeta"}
	var entries []string
	for _, n := range names {
		entries = append(entries, fmt.Sprintf(`{"name":%q,"ok":1}`, n))
	}
	if rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken, `{"agent":"seed","breakers":[`+strings.Join(entries, ",")+`]}`); rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	list := func(q string) breakerPage {
		t.Helper()
		rec := call(t, h, "GET", "/v1/breakers"+q, testcluster.ReadToken, "")
		if rec.Code != 200 {
			t.Fatalf("GET /v1/breakers%s: %d %s", q, rec.Code, rec.Body)
		}
		var p breakerPage
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("every view says its group", func(t *testing.T) {
		for _, b := range list("?limit=1000").Breakers {
			want, _, _ := strings.Cut(b.Name, ".")
			if b.Group != want {
				t.Errorf("%s: group %q, want %q", b.Name, b.Group, want)
			}
		}
	})

	t.Run("group= lists the provider's breaker and its models', a page at a time", func(t *testing.T) {
		var got []string
		q := "?group=openai&limit=2"
		for pages := 0; ; pages++ {
			p := list(q)
			for _, b := range p.Breakers {
				got = append(got, b.Name)
				if b.Group != "openai" {
					t.Fatalf("%s in group %q", b.Name, b.Group)
				}
			}
			if p.NextCursor == "" || pages > 5 {
				break
			}
			q = "?group=openai&limit=2&cursor=" + p.NextCursor
		}
		if strings.Join(got, " ") != "openai openai.gpt-4o openai.gpt-4o-mini openai.o3" {
			t.Fatalf("group openai: %v", got)
		}
		if p := list("?group=zeta"); len(p.Breakers) != 1 || p.Breakers[0].Name != "zeta" || p.NextCursor != "" {
			t.Fatalf("group zeta: %+v", p)
		}
		if p := list("?group=nobody"); len(p.Breakers) != 0 || p.NextCursor != "" {
			t.Fatalf("group nobody: %+v", p)
		}
	})

	t.Run("a group that is not a name's first part is a 400", func(t *testing.T) {
		for _, g := range []string{"openai.gpt-4o", "-x", "a%20b", strings.Repeat("x", 129)} {
			if rec := call(t, h, "GET", "/v1/breakers?group="+g, testcluster.ReadToken, ""); rec.Code != 400 || !strings.Contains(rec.Body.String(), "group") {
				t.Errorf("group=%s: %d %s", g, rec.Code, rec.Body)
			}
		}
	})

	t.Run("misconfigured: open for a 401 or 403, not for an outage", func(t *testing.T) {
		if rec := call(t, h, "POST", "/v1/reports", testcluster.AgentToken,
			`{"agent":"a1","breakers":[{"name":"openai.gpt-4o","fail":1,"trailing_fail":1,"misconfigured":1,"last_error":"openai: HTTP 401 invalid_api_key"}]}`); rec.Code != 200 {
			t.Fatal(rec.Body)
		}
		c.Trip(t, "openai.o3", 5)
		view := func(name string) api.BreakerView {
			rec := call(t, h, "GET", "/v1/breakers/"+name, testcluster.ReadToken, "")
			var v api.BreakerView
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
				t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
			}
			return v
		}
		testcluster.Eventually(t, 3*time.Second, "openai.gpt-4o open", func() bool { return view("openai.gpt-4o").Effective == "open" })
		if v := view("openai.gpt-4o"); !v.Misconfigured || v.LastTransition.Reason != "misconfigured" || v.Group != "openai" {
			t.Fatalf("after a 401: %+v", v)
		}
		if v := view("openai.o3"); v.Misconfigured || v.Effective != "open" {
			t.Fatalf("after an outage: %+v", v)
		}
		if rec := call(t, h, "POST", "/v1/breakers/openai.gpt-4o/reset", testcluster.AdminToken, ""); rec.Code != 200 {
			t.Fatal(rec.Body)
		}
		if v := view("openai.gpt-4o"); v.Misconfigured || v.Effective != "closed" {
			t.Fatalf("after a reset: %+v", v)
		}
	})
}
