package bench

import (
	"os"
	"testing"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/sidecar"
)

// TestSim_UsesTheShippedDefaults: the outage simulation's fusebox runs
// with the values the examples ship, so its table is what a user of the
// examples gets.
func TestSim_UsesTheShippedDefaults(t *testing.T) {
	data, err := os.ReadFile("../examples/fusebox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policy("openai")
	spec := c.Canaries["openai"]
	for _, chk := range []struct {
		name      string
		got, want any
	}{
		{"consecutive_failures", p.ConsecutiveFailures, 5},
		{"hang_after", p.HangAfter, simHangAfter},
		{"canary_interval", p.CanaryInterval, simCanaryEvery},
		{"canary_max_interval", p.CanaryMaxInterval, simCanaryMax},
		{"probe_timeout", p.ProbeTimeout, simProbeTimeout},
		{"canary timeout", spec.Timeout, simCanaryTimeout},
	} {
		if chk.got != chk.want {
			t.Errorf("examples/fusebox.yaml openai %s = %v, the simulation uses %v", chk.name, chk.got, chk.want)
		}
	}
	data, err = os.ReadFile("../examples/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sidecar.ParseConfig(data, func(string) string { return "sk-example" })
	if err != nil {
		t.Fatal(err)
	}
	o := sc.Providers["openai"]
	r, _ := sc.RouteFor("gpt-4o-mini")
	for _, chk := range []struct {
		name      string
		got, want any
	}{
		{"connect", o.Connect, simConnect},
		{"first_byte", o.FirstByte, simFirstByte},
		{"first_token", o.FirstToken, simFirstToken},
		{"stall", o.Stall, simStall},
		{"total", o.Total, simTotal},
		{"hedge min", r.Hedge.Min, simHedgeMin},
		{"hedge max", r.Hedge.Max, simHedgeMax},
		{"retry base", sc.Retry.Base, simRetryBase},
		{"retry max", sc.Retry.Max, simRetryMax},
	} {
		if chk.got != chk.want {
			t.Errorf("examples/sidecar.yaml %s = %v, the simulation uses %v", chk.name, chk.got, chk.want)
		}
	}
}
