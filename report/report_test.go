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
	batch := r.Batch(b)
	if r.Agent != "web-1" || !r.Degraded || batch.OK != 3 || batch.Fail != 2 || batch.TrailingFail != 1 || batch.Slow != 1 ||
		batch.RetryAfter.Milliseconds() != 2000 || batch.Probe == nil || batch.Probe.Epoch != 4 || batch.Probe.Error != "timeout" ||
		batch.Boot != "b1" || batch.Seq != 9 || !batch.Fenced || batch.Gen != "1.2" || batch.Version != 3 || batch.LastOKAge.Milliseconds() != 40 ||
		batch.Hung != 2 || batch.HungWaiting != 3 || batch.HungOldest.Milliseconds() != 2500 || batch.Probe.Nonce != "n1" || batch.Probe.Gen != "1.2" {
		t.Fatalf("decoded %+v / %+v", r, batch)
	}
	hand, err := report.Decode(strings.NewReader(`{"agent":"me","breakers":[{"name":"openai","fail":5}]}`))
	if err != nil || hand.Batch(hand.Breakers[0]).Fenced {
		t.Fatalf("a report with no version is unfenced: %+v %v", hand, err)
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
