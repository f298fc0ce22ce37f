package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
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
// without reloading, and its force-open button works with a token.
func TestDashboard_InChromium(t *testing.T) {
	bin := chromium(t)
	c := testcluster.Start(t, testcluster.Options{ConfigYAML: "defaults:\n  open_timeout: 10m\n"})
	const many = 300
	var entries []string
	for i := range many {
		entries = append(entries, fmt.Sprintf(`{"name":"svc-%03d","ok":1}`, i))
	}
	req, _ := http.NewRequest("POST", c.Coordinators[0].URL+"/v1/reports", strings.NewReader(`{"agent":"seed","breakers":[`+strings.Join(entries, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testcluster.AgentToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("seeding breakers: %v %v", resp, err)
	}
	c.Trip(t, "openai", 5)

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

	url := c.Coordinators[0].URL + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatal(err)
	}
	noProblems("loading the page")

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), testcluster.AdminToken),
		chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="openai"]`))); err != nil {
		t.Fatal(err)
	}
	if n := evalInt(`document.querySelectorAll("#rows tr").length`); n != many+1 {
		t.Fatalf("the page lists %d breakers, want %d", n, many+1)
	}
	if s := stateOf("openai"); s != "open" {
		t.Fatalf("openai shows %q, want open", s)
	}
	waitState("svc-007", "closed", time.Second)

	// A trip anywhere in the cluster shows within a second, no reload.
	c.Trip(t, "svc-007", 5)
	took := waitState("svc-007", "open", time.Second)
	t.Logf("the page showed the trip %s after it was reported", took.Round(time.Millisecond))

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
	noProblems("after using the page")
	if path := os.Getenv("FUSEBOX_DASHBOARD_SCREENSHOT"); path != "" {
		_ = chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("filter"), "\b\b\b\b\b\b"))
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(path, png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
	}
}
