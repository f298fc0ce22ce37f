package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fusebox-io/fusebox/internal/testcluster"
)

// chromium finds Debian's chromium (or FUSEBOX_CHROMIUM). The test fails,
// never skips, when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("FUSEBOX_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install Debian's package with `apt-get install -y chromium` (make test does), or set FUSEBOX_CHROMIUM")
	return ""
}

// TestDashboard_InChromium drives the dashboard in a real headless
// Chromium against a real coordinator and Redis: it loads with no console
// errors, lists hundreds of breakers, shows a trip within a second
// without reloading, on the row and on its timeline strip, moves a
// breaker's sparkline when reports arrive, shows the routes' fallback
// share and the agents by service with the degraded one marked, opens a
// breaker's journal on a click, and its force-open button works with a
// token. A sidecar's per-model breakers sit under a header row for their
// provider (its own breaker with them) that shows the group's worst state
// and folds; a breaker open for the callers' credentials shows as
// misconfigured, in its own colour, live and as the API reads it. Screenshots (PNG) go to the test's temporary directory, or to
// $FUSEBOX_DASHBOARD_SCREENSHOTS, a directory kept after the test.
func TestDashboard_InChromium(t *testing.T) {
	bin := chromium(t)
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
	const many = 300
	var entries []string
	for i := range many {
		entries = append(entries, fmt.Sprintf(`{"name":"svc-%03d","ok":1}`, i))
	}
	// A provider's breaker and its per-model ones; a per-model breaker
	// whose provider has none of its own.
	perModel := []string{"anthropic", "anthropic.claude-haiku-4-5", "anthropic.claude-sonnet-4-5", "ollama.llama3.2_1b"}
	for _, n := range perModel {
		entries = append(entries, fmt.Sprintf(`{"name":%q,"ok":1}`, n))
	}
	req, _ := http.NewRequest("POST", c.Coordinators[0].URL+"/v1/reports", strings.NewReader(`{"agent":"seed","breakers":[`+strings.Join(entries, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("seeding breakers: %v %v", resp, err)
	}
	c.Trip(t, "openai", 5)
	post := func(body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", c.Coordinators[0].URL+"/v1/reports", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("report: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("report: %s", resp.Status)
		}
	}
	// Agents of two services, one degraded, and a sidecar's routes.
	heartbeats := func() {
		post(`{"agent":"web-1","service":"checkout","breakers":[],"routes":[{"name":"chat","served":30,"fallback":6},{"name":"embeddings","served":10}]}`)
		post(`{"agent":"web-2","service":"checkout","degraded":true,"breakers":[],"routes":[{"name":"chat","served":10,"fallback":4}]}`)
		post(`{"agent":"batch-1","service":"ingest","breakers":[]}`)
	}
	heartbeats()
	shots := os.Getenv("FUSEBOX_DASHBOARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console."+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s line %d", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber))
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	noProblems := func(when string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("%s: the browser reported %v", when, problems)
		}
	}
	evalInt := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	stateOf := func(name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector('tr[data-name=%q]') || {dataset: {}}).dataset.state || ""`, name)))
		if err != nil {
			t.Fatalf("read %s's state: %v", name, err)
		}
		return v
	}
	waitState := func(name, want string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for stateOf(name) != want {
			if time.Since(start) > within {
				t.Fatalf("the page still shows %s as %q after %s, want %q", name, stateOf(name), within, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}

	evalStr := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// waitFor polls a condition in the page until it holds.
	waitFor := func(what, js string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for evalStr(`String(!!(`+js+`))`) != "true" {
			if time.Since(start) > within {
				t.Fatalf("after %s the page still does not show %s (%s)", within, what, js)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatalf("screenshot %s is not a PNG", name)
		}
		t.Logf("screenshot: %s", filepath.Join(shots, name))
	}
	sortBy := func(by string) {
		t.Helper()
		evalStr(`(() => { const s = document.getElementById("sort"); s.value = "` + by + `"; s.dispatchEvent(new Event("change")); return s.value })()`)
	}
	strip := func(name string) string {
		return fmt.Sprintf(`document.querySelector('tr[data-name=%q] svg.strip')`, name)
	}
	spark := func(name string) string {
		return fmt.Sprintf(`document.querySelector('tr[data-name=%q] svg.spark')`, name)
	}

	url := c.Coordinators[0].URL + "/"
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	noProblems("loading the page")

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), testcluster.AdminToken),
		chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="openai"]`))); err != nil {
		t.Fatal(err)
	}
	if n := evalInt(`document.querySelectorAll("#rows tr[data-name]").length`); n != many+1+len(perModel) {
		t.Fatalf("the page lists %d breakers, want %d", n, many+1+len(perModel))
	}
	if s := stateOf("openai"); s != "open" {
		t.Fatalf("openai shows %q, want open", s)
	}
	waitState("svc-007", "closed", time.Second)
	// The strips on screen read their last hour from the journal:
	// openai's shows the trip, a quiet breaker's is one closed segment.
	waitFor("openai's trip on its strip", strip("openai")+`.querySelector('rect[data-state="open"]')`, 3*time.Second)
	waitFor("svc-007's strip, all closed", strip("svc-007")+`.dataset.segments === "1" && `+strip("svc-007")+`.dataset.current === "closed"`, 3*time.Second)
	waitFor("openai's failures on its sparkline", spark("openai")+`.dataset.failed >= 5`, 3*time.Second)
	screenshot("dashboard-loaded.png")

	// A trip anywhere in the cluster shows within a second, no reload: on
	// the row and at the right end of its strip.
	tripped := time.Now()
	c.Trip(t, "svc-007", 5)
	waitFor("svc-007's trip on its row and its strip", `document.querySelector('tr[data-name="svc-007"]').dataset.state === "open" && `+
		strip("svc-007")+`.dataset.current === "open" && `+strip("svc-007")+`.lastElementChild.dataset.state === "open"`, time.Second)
	t.Logf("the page showed the trip on its row and its strip %s after the test reported it (polled), %s ms after it was journaled (the page's own count)",
		time.Since(tripped).Round(time.Millisecond), evalStr(strip("svc-007")+`.dataset.eventLagMs`))
	if x, w := evalStr(strip("svc-007")+`.lastElementChild.getAttribute("x")`), evalStr(strip("svc-007")+`.lastElementChild.getAttribute("width")`); x == "" || w == "" || mustFloat(t, x)+mustFloat(t, w) < 3599 {
		t.Fatalf("the open segment is at x=%s width=%s, want it at the strip's right end (now)", x, w)
	}

	// The sparkline moves when reports arrive.
	waitFor("svc-003's sparkline", spark("svc-003")+`.dataset.total !== undefined`, 5*time.Second)
	before, points := evalStr(spark("svc-003")+`.dataset.total`), evalStr(spark("svc-003")+`.querySelector("polyline.fails").getAttribute("points")`)
	for range 3 {
		post(`{"agent":"web-1","service":"checkout","breakers":[{"name":"svc-003","ok":20,"fail":2,"trailing_fail":0,"last_error":"HTTP 503"}]}`)
	}
	waitFor("svc-003's sparkline after 66 more calls", spark("svc-003")+`.dataset.total - `+before+` >= 66`, 5*time.Second)
	if after := evalStr(spark("svc-003") + `.querySelector("polyline.fails").getAttribute("points")`); after == points || after == "" {
		t.Fatalf("the failures' line did not move: %q", after)
	}
	if failed := evalInt(spark("svc-003") + `.dataset.failed * 1`); failed < 6 {
		t.Fatalf("svc-003's sparkline counts %d failures, want the 6 reported", failed)
	}
	if rate := evalStr(`document.querySelector('tr[data-name="svc-003"] .rate').textContent`); !strings.Contains(rate, "/s") && rate != "idle" {
		t.Fatalf("svc-003's rate reads %q", rate)
	}

	// Per-model breakers under their provider's header row, the
	// provider's own breaker first; breakers with no "." stand alone.
	following := func(group string, n int) string {
		return evalStr(fmt.Sprintf(`(() => { const out = []; let tr = document.querySelector('#rows tr.group[data-group=%q]');
			for (let i = 0; i < %d && tr; i++, tr = tr.nextElementSibling) out.push(tr.dataset.name || "[" + tr.dataset.group + "]");
			return out.join(" "); })()`, group, n))
	}
	if n := evalInt(`document.querySelectorAll("#rows tr.group").length`); n != 2 {
		t.Fatalf("%d group rows, want anthropic's and ollama's", n)
	}
	if got := following("anthropic", 5); got != "[anthropic] anthropic anthropic.claude-haiku-4-5 anthropic.claude-sonnet-4-5 [ollama]" {
		t.Fatalf("anthropic's group reads %q", got)
	}
	if got := following("ollama", 3); got != "[ollama] ollama.llama3.2_1b openai" {
		t.Fatalf("ollama's group reads %q", got)
	}
	if n := evalInt(`document.querySelectorAll('#rows tr.member[data-name^="svc-"], #rows tr.member[data-name="openai"]').length`); n != 0 {
		t.Fatalf("%d breakers with no \".\" were put in a group", n)
	}
	group := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#rows tr.group[data-group=%q]')`, name)
	}
	if st, counts := evalStr(group("anthropic")+`.dataset.state`), evalStr(group("anthropic")+`.querySelector(".gcount").textContent`); st != "closed" || counts != "3 breakers" {
		t.Fatalf("anthropic's header: %s, %q", st, counts)
	}

	// A 401 on one model: its row shows misconfigured, in its own colour,
	// live, and so does its group's header; the API's view says the same.
	post(`{"agent":"web-1","service":"checkout","breakers":[{"name":"anthropic.claude-sonnet-4-5","fail":1,"trailing_fail":1,"misconfigured":1,"last_error":"anthropic: HTTP 401 authentication_error"}]}`)
	sonnet := `document.querySelector('tr[data-name="anthropic.claude-sonnet-4-5"]')`
	waitFor("claude-sonnet's row misconfigured", sonnet+`.dataset.state === "misconfigured" && `+sonnet+`.querySelector(".badge.misconfigured").textContent === "misconfigured"`, time.Second)
	waitFor("anthropic's header misconfigured", group("anthropic")+`.dataset.state === "misconfigured" && `+group("anthropic")+`.querySelector(".gstate .badge.misconfigured")`, time.Second)
	waitFor("claude-sonnet's strip ends misconfigured", strip("anthropic.claude-sonnet-4-5")+`.dataset.current === "misconfigured" && `+strip("anthropic.claude-sonnet-4-5")+`.lastElementChild.classList.contains("misconfigured")`, time.Second)
	if mis, open := evalStr(`getComputedStyle(`+sonnet+`.querySelector(".badge")).backgroundColor`),
		evalStr(`getComputedStyle(document.querySelector('tr[data-name="openai"] .badge')).backgroundColor`); mis == open || mis == "" {
		t.Fatalf("misconfigured's badge is %q, open's %q: want its own colour", mis, open)
	}
	if got := following("anthropic", 2); got != "[anthropic] anthropic" {
		t.Fatalf("the group's order moved by name: %q", got)
	}
	evalStr(`(getJSON("/v1/breakers/anthropic.claude-sonnet-4-5").then((b) => { render(b, false); document.body.dataset.refetched = String(b.misconfigured) }), "")`)
	waitFor("the API's view, rendered", `document.body.dataset.refetched === "true" && `+sonnet+`.dataset.state === "misconfigured"`, 3*time.Second)
	if !strings.Contains(evalStr(`document.getElementById("summary").textContent`), "1 misconfigured") {
		t.Fatalf("the summary: %q", evalStr(`document.getElementById("summary").textContent`))
	}
	screenshot("dashboard-groups.png")

	// A group folds and unfolds.
	members := `[...document.querySelectorAll('#rows tr.member')].filter((tr) => tr.dataset.name.startsWith("anthropic")).map((tr) => getComputedStyle(tr).display).join(" ")`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr.group[data-group="anthropic"] button.toggle`))); err != nil {
		t.Fatal(err)
	}
	if got := evalStr(members); got != "none none none" || evalStr(group("anthropic")+`.dataset.collapsed`) != "true" {
		t.Fatalf("folded, anthropic's members display %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr.group[data-group="anthropic"] button.toggle`))); err != nil {
		t.Fatal(err)
	}
	if got := evalStr(members); strings.Contains(got, "none") || strings.Count(got, " ") != 2 {
		t.Fatalf("unfolded, anthropic's members display %q", got)
	}

	// Agents by service, the degraded one marked; the routes' fallback
	// share.
	heartbeats()
	waitFor("the checkout service with its degraded agent", `document.querySelector('#agents .svc.has-degraded[data-service="checkout"] li.agent.degraded[data-agent="web-2"] .badge.degraded')`, 5*time.Second)
	if n := evalInt(`document.querySelectorAll('#agents .svc[data-service="checkout"] li.agent').length`); n != 2 {
		t.Fatalf("checkout lists %d agents, want 2", n)
	}
	if evalStr(`String(!!document.querySelector('#agents .svc[data-service="ingest"] li.agent[data-agent="batch-1"]:not(.degraded)'))`) != "true" {
		t.Fatal("batch-1 is not listed, healthy, under ingest")
	}
	if first := evalStr(`document.querySelector('#agents .svc').dataset.service`); first != "checkout" {
		t.Fatalf("the first service is %q, want the one with a degraded agent", first)
	}
	waitFor("the chat route's fallback share", `document.querySelector('#routeRows tr[data-route="chat"]')`, 5*time.Second)
	waitFor("chat's share: 20 fallbacks in 80 (both rounds of reports counted)", `document.querySelector('#routeRows tr[data-route="chat"] .pct').textContent === "25% (20 of 80)"`, 5*time.Second)
	if share := evalStr(`document.querySelector('#routeRows tr[data-route="chat"]').dataset.share`); share != "0.2500" {
		t.Fatalf("chat's share is %q", share)
	}
	if pct := evalStr(`document.querySelector('#routeRows tr[data-route="embeddings"] .pct').textContent`); pct != "0% (0 of 20)" {
		t.Fatalf("embeddings' share reads %q", pct)
	}

	// A cascade: two more trip; the list puts the breakers in trouble
	// first.
	c.Trip(t, "svc-008", 5)
	c.Trip(t, "svc-009", 5)
	waitFor("svc-009's trip on its strip", strip("svc-009")+`.dataset.current === "open"`, time.Second)
	sortBy("trouble")
	// The misconfigured group first, its member in trouble first within it.
	if first := evalStr(`[...document.querySelectorAll("#rows tr")].slice(0, 8).map(r => r.dataset.name || "[" + r.dataset.group + "]").join(" ")`); first != "[anthropic] anthropic.claude-sonnet-4-5 anthropic anthropic.claude-haiku-4-5 openai svc-007 svc-008 svc-009" {
		t.Fatalf("not closed first: %q", first)
	}

	// A click on a breaker's name shows its journal.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-name="svc-007"] button.name`))); err != nil {
		t.Fatal(err)
	}
	waitFor("svc-007's journal", `document.getElementById("journal").dataset.breaker === "svc-007" && document.getElementById("journal").dataset.loaded === "true" && !document.getElementById("journal").hidden`, 3*time.Second)
	if ev := evalStr(`[...document.querySelectorAll("#journalEvents li")].map(li => li.dataset.event).join(" ")`); ev != "trip" {
		t.Fatalf("svc-007's journal lists %q, want its trip", ev)
	}
	if evalStr(`document.getElementById("journalStrip").dataset.current`) != "open" {
		t.Fatal("the journal's strip does not end open")
	}
	if !strings.Contains(evalStr(`document.getElementById("journalEvents").textContent`), "consecutive_failures") {
		t.Fatal("the journal does not say why it tripped")
	}
	screenshot("dashboard-cascade.png")
	sortBy("name")

	// The force-open button, with the admin token.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-name="svc-010"] button[data-action="force-open"]`)),
		chromedp.WaitVisible(chromedp.ID("reason")),
		chromedp.SendKeys(chromedp.ID("reason"), "drill from the dashboard"),
		chromedp.SendKeys(chromedp.ID("ttl"), "5m"),
		chromedp.Click(chromedp.ID("overrideConfirm"))); err != nil {
		t.Fatal(err)
	}
	waitState("svc-010", "forced_open", 2*time.Second)
	evs, err := c.Store.Events(context.Background(), "svc-010", 1, "")
	if err != nil || len(evs) != 1 || evs[0].Event != "force_open" || evs[0].Actor != "test-admin" || evs[0].Reason != "drill from the dashboard" {
		t.Fatalf("journal after the button: %+v %v", evs, err)
	}
	if snap := c.Snapshot(t, "svc-010"); snap.Override != "open" {
		t.Fatalf("cluster state after the button: %+v", snap)
	}

	// A deleted breaker's row goes, live.
	req, _ = http.NewRequest("DELETE", c.Coordinators[0].URL+"/v1/breakers/svc-299", strings.NewReader(`{"reason":"decommissioned"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testcluster.AdminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete svc-299: %v %v", resp, err)
	}
	start := time.Now()
	for evalInt(`document.querySelectorAll('tr[data-name="svc-299"]').length`) != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the deleted breaker's row is still on the page after 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The filter narrows hundreds of rows.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("filter"), "svc-01")); err != nil {
		t.Fatal(err)
	}
	if visible := evalInt(`[...document.querySelectorAll("#rows tr")].filter(r => !r.classList.contains("hidden")).length`); visible != 10 {
		t.Fatalf("filter svc-01 shows %d rows, want 10", visible)
	}
	if events := evalInt(`document.querySelectorAll("#events li").length`); events < 2 {
		t.Fatalf("recent events list has %d entries", events)
	}
	// The journal follows live events of the breaker it shows.
	if _, err := c.Store.Reset(context.Background(), "svc-007", c.Config.Policy("svc-007"), "ops", "healed"); err != nil {
		t.Fatal(err)
	}
	waitFor("the reset in the open journal", `document.querySelector("#journalEvents li").dataset.event === "reset"`, time.Second)
	noProblems("after using the page")
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return f
}
