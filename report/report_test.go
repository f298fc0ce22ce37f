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
	r, err := report.Decode(strings.NewReader(`{"agent":"web-1","degraded":true,"breakers":[{"name":"openai","ok":3,"fail":2,"trailing_fail":1,"slow":1,"retry_after_ms":2000,"last_error":"503","probe":{"epoch":4,"ok":false,"error":"timeout"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := r.Breakers[0]
	batch := b.Batch()
	if r.Agent != "web-1" || !r.Degraded || batch.OK != 3 || batch.Fail != 2 || batch.TrailingFail != 1 || batch.Slow != 1 ||
		batch.RetryAfter.Milliseconds() != 2000 || batch.Probe == nil || batch.Probe.Epoch != 4 || batch.Probe.Error != "timeout" {
		t.Fatalf("decoded %+v / %+v", r, batch)
	}
}

func TestDecode_ErrorsNameTheField(t *testing.T) {
	_, err := report.Decode(strings.NewReader(`{"agent":"a","breakers":[{"name":"ok"},{"name":"x","slow":3,"ok":1}]}`))
	var re *report.Error
	if !errors.As(err, &re) || re.Field != "breakers[1].slow" {
		t.Fatalf("err = %v", err)
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
		`{"agent":"a","breakers":[{"name":"openai","probe":{"epoch":1,"ok":true}}]}`,
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
