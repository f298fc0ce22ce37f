package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/report"
)

func TestDecode_AcceptsAValidReport(t *testing.T) {
	r, err := report.Decode(strings.NewReader(`{"agent":"web-1","boot":"b1","seq":9,"degraded":true,"breakers":[{"name":"openai","gen":"1.2","version":3,"ok":3,"fail":2,"trailing_fail":1,"slow":1,"last_ok_age_ms":40,"hung":{"n":2,"waiting":3,"oldest_ms":2500},"retry_after_ms":2000,"last_error":"503","probe":{"gen":"1.2","epoch":4,"ok":false,"error":"timeout","nonce":"n1"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := r.Breakers[0]
	if r.Agent != "web-1" || !r.Degraded || r.Boot != "b1" || r.Seq != 9 || b.OK != 3 || b.Fail != 2 || b.TrailingFail != 1 || b.Slow != 1 ||
		b.RetryAfterMS != 2000 || b.Probe == nil || b.Probe.Epoch != 4 || b.Probe.Error != "timeout" || b.Version == nil || *b.Version != 3 ||
		b.Gen != "1.2" || b.LastOKAgeMS != 40 || b.Hung == nil || b.Hung.N != 2 || b.Hung.Waiting != 3 || b.Hung.OldestMS != 2500 ||
		b.Probe.Nonce != "n1" || b.Probe.Gen != "1.2" {
		t.Fatalf("decoded %+v / %+v", r, b)
	}
	hand, err := report.Decode(strings.NewReader(`{"agent":"me","breakers":[{"name":"openai","fail":5}]}`))
	if err != nil || hand.Breakers[0].Version != nil {
		t.Fatalf("a report with no version is unfenced: %+v %v", hand, err)
	}
}

func TestDecode_ServiceAndRoutes(t *testing.T) {
	t.Run("both are optional and read when sent", func(t *testing.T) {
		r, err := report.Decode(strings.NewReader(`{"agent":"web-1","service":"checkout/eu","breakers":[],"routes":[{"name":"chat","served":12,"fallback":3},{"name":"embed","served":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if r.Service != "checkout/eu" || len(r.Routes) != 2 || r.Routes[0] != (report.Route{Name: "chat", Served: 12, Fallback: 3}) || r.Routes[1].Fallback != 0 {
			t.Fatalf("decoded %+v", r)
		}
		plain, err := report.Decode(strings.NewReader(`{"agent":"web-1","breakers":[]}`))
		if err != nil || plain.Service != "" || plain.Routes != nil {
			t.Fatalf("a report without them: %+v %v", plain, err)
		}
	})
	t.Run("bad values name their field", func(t *testing.T) {
		var re *report.Error
		for body, field := range map[string]string{
			`{"agent":"a","service":"two words","breakers":[]}`:                                      "service",
			`{"agent":"a","service":"-lead","breakers":[]}`:                                          "service",
			`{"agent":"a","breakers":[],"routes":[{"name":"a b","served":1}]}`:                       "routes[0].name",
			`{"agent":"a","breakers":[],"routes":[{"name":"","served":1}]}`:                          "routes[0].name",
			`{"agent":"a","breakers":[],"routes":[{"name":"c","served":1},{"name":"c","served":2}]}`: "routes[1].name",
			`{"agent":"a","breakers":[],"routes":[{"name":"c","served":-1}]}`:                        "routes[0].served",
			`{"agent":"a","breakers":[],"routes":[{"name":"c","served":2,"fallback":3}]}`:            "routes[0].fallback",
			`{"agent":"a","breakers":[],"routes":[{"name":"c","served":2,"fallback":-1}]}`:           "routes[0].fallback",
			`{"agent":"a","breakers":[],"routes":[{"name":"c","served":1000000001}]}`:                "routes[0].served",
		} {
			if _, err := report.Decode(strings.NewReader(body)); !errors.As(err, &re) || re.Field != field {
				t.Errorf("%s: err = %v, want field %s", body, err, field)
			}
		}
		var many []string
		for i := range report.MaxRoutes + 1 {
			many = append(many, `{"name":"r`+strings.Repeat("x", i)+`","served":1}`)
		}
		if _, err := report.Decode(strings.NewReader(`{"agent":"a","breakers":[],"routes":[` + strings.Join(many, ",") + `]}`)); !errors.As(err, &re) || re.Field != "routes" {
			t.Errorf("%d routes: %v", len(many), err)
		}
		if _, err := report.Decode(strings.NewReader(`{"agent":"a","breakers":[],"routes":[{"name":"c","served":1,"extra":1}]}`)); !errors.As(err, &re) {
			t.Errorf("unknown field in a route: %v", err)
		}
	})
	if !report.ValidService("checkout") || report.ValidService("") || report.ValidService("a b") || report.ValidService(strings.Repeat("s", 129)) {
		t.Fatal("ValidService disagrees with the agent name's rule")
	}
}

func TestCheck_RefusesWhatDecodeRefuses(t *testing.T) {
	if _, err := report.Check(report.Report{Agent: "a", Breakers: []report.Breaker{{Name: "bad name"}}}); err == nil {
		t.Fatal("Check passed an invalid breaker name")
	}
	v, err := report.Check(report.Report{Agent: "a", Breakers: []report.Breaker{{Name: "ok", Fail: 1}}})
	if err != nil || v.Report().Breakers[0].Fail != 1 {
		t.Fatalf("Check of a valid report: %+v %v", v.Report(), err)
	}
	if _, err := report.DecodeValid(strings.NewReader(`{"agent":"a","breakers":[{"name":"x","fail":-1}]}`)); err == nil {
		t.Fatal("DecodeValid passed a negative count")
	}
}

func TestDecodePermit(t *testing.T) {
	p, err := report.DecodePermit(strings.NewReader(`{"agent":"a1","breaker":"openai","gen":"1.2","epoch":3,"nonce":"abc"}`))
	if err != nil || p.Breaker != "openai" || p.Epoch != 3 || p.Nonce != "abc" {
		t.Fatalf("permit: %+v %v", p, err)
	}
	var re *report.Error
	for body, field := range map[string]string{
		`{"agent":"a1","breaker":"open ai","gen":"1.2","epoch":3,"nonce":"abc"}`: "breaker",
		`{"agent":"a1","breaker":"openai","gen":"","epoch":3,"nonce":"abc"}`:     "gen",
		`{"agent":"a1","breaker":"openai","gen":"1.2","epoch":0,"nonce":"abc"}`:  "epoch",
		`{"agent":"a1","breaker":"openai","gen":"1.2","epoch":3,"nonce":""}`:     "nonce",
		`{"agent":"","breaker":"openai","gen":"1.2","epoch":3,"nonce":"abc"}`:    "agent",
	} {
		if _, err := report.DecodePermit(strings.NewReader(body)); !errors.As(err, &re) || re.Field != field {
			t.Errorf("%s: err = %v, want field %s", body, err, field)
		}
	}
	if _, err := report.DecodePermit(strings.NewReader(`{"agent":"a1","breaker":"openai","gen":"1.2","epoch":3,"nonce":"abc","extra":1}`)); !errors.As(err, &re) {
		t.Errorf("unknown field: %v", err)
	}
}

func TestDecodeChange(t *testing.T) {
	m, err := report.DecodeChange(`{"name":"openai","state":"open","override":"","version":3,"epoch":1,"gen":"1.2","retry_in_ms":500,"event":{"id":"1-0","event":"trip"}}`)
	if err != nil || m.Name != "openai" || m.State != report.StateOpen || m.Version != 3 || m.RetryInMS != 500 || m.Event["event"] != "trip" {
		t.Fatalf("change = %+v %v", m, err)
	}
	if s, err := report.DecodeMessage(`{"name":"openai","state":"open","override":"","version":3,"epoch":1,"gen":"1.2","retry_in_ms":500,"event":{"id":"1-0","event":"trip"}}`); err != nil || s != m.Snapshot {
		t.Fatalf("message = %+v %v, want the change's snapshot %+v", s, err, m.Snapshot)
	}
	for _, payload := range []string{"", "{", `{"name":"a b","state":"open"}`, `{"name":"a","state":"weird"}`, `{"name":"a","state":"open","override":"x"}`} {
		if _, err := report.DecodeMessage(payload); err == nil {
			t.Errorf("payload %q decoded without error", payload)
		}
	}
}

func TestDecode_ErrorsNameTheField(t *testing.T) {
	_, err := report.Decode(strings.NewReader(`{"agent":"a","breakers":[{"name":"ok"},{"name":"x","slow":3,"ok":1}]}`))
	var re *report.Error
	if !errors.As(err, &re) || re.Field != "breakers[1].slow" {
		t.Fatalf("err = %v", err)
	}
	for body, field := range map[string]string{
		`{"agent":"a","breakers":[{"name":"x","probe":{"epoch":1,"ok":true}}]}`: "breakers[0].probe.nonce",
		`{"agent":"a","breakers":[{"name":"x","hung":{"n":-1}}]}`:               "breakers[0].hung.n",
		`{"agent":"a","breakers":[{"name":"x","version":-2}]}`:                  "breakers[0].version",
		`{"agent":"a","boot":"a b","breakers":[]}`:                              "boot",
	} {
		if _, err := report.Decode(strings.NewReader(body)); !errors.As(err, &re) || re.Field != field {
			t.Errorf("%s: err = %v, want field %s", body, err, field)
		}
	}
	_, err = report.Decode(strings.NewReader(`{"agent":"a","breakers":[` + strings.Repeat(`{"name":"x"},`, report.MaxBreakers) + `{"name":"y"}]}`))
	if !errors.As(err, &re) || re.Field != "breakers" {
		t.Fatalf("too many breakers: %v", err)
	}
}

// FuzzDecode: no input panics, and whatever decodes is valid and
// survives a round trip.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"agent":"a","breakers":[]}`,
		`{"agent":"a","breakers":[{"name":"openai","fail":5,"trailing_fail":5,"last_error":"503"}]}`,
		`{"agent":"a","breakers":[{"name":"openai","probe":{"epoch":1,"ok":true,"nonce":"x"}}]}`,
		`{"agent":"a","boot":"b","seq":3,"breakers":[{"name":"openai","gen":"1.2","version":0,"hung":{"n":1}}]}`,
		`{"agent":"a","breakers":[{"name":"x}{y","fail":1}]}`,
		`{"agent":"a","breakers":[{"name":"a","fail":-1}]}`,
		`{"agent":"a","service":"web","breakers":[],"routes":[{"name":"chat","served":3,"fallback":1}]}`,
		`null`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := report.Decode(bytes.NewReader(data))
		if err != nil {
			var re *report.Error
			if !errors.As(err, &re) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded an invalid report: %v", err)
		}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := report.Decode(bytes.NewReader(js)); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
