package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/provider"
)

// readingSeeds are bodies where reading in place could part from
// decoding: repeated keys, keys and values with escapes, keys in other
// cases, nulls, odd types, whitespace, bytes that are not UTF-8.
var readingSeeds = []string{
	benchChat,
	benchPlain,
	`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
	` { "model" : "m" , "messages" : [ { "role" : "user" , "content" : "hi" } ] , "max_tokens" : 7 } `,
	`{"model":"a","model":"b","messages":[{"role":"user"}]}`,
	`{"mod\u0065l":"m\u00e9","messages":[{"r\u006fle":"us\u0065r"}]}`,
	`{"model":"m","messages":[{"ROLE":"user"},{"Role":"bogus","role":null}]}`,
	`{"model":"m","messages":[{"role":"user"},{"role":"nope"},7]}`,
	`{"model":"m","messages":[{"role":"user"},{"role":"nope"},{"role":"worse"}]}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[{"role":1}]}`,
	`{"model":"m","messages":[]}`,
	`{"model":"m","messages":null}`,
	`{"model":"m","messages":{}}`,
	`{"model":null,"messages":[{"role":"user"}]}`,
	`{"model":"","messages":[{"role":"user"}]}`,
	`{"model":7}`,
	`null`,
	`[]`,
	`"x"`,
	`{"model":"m"`,
	`{"model":"m","messages":[{"role":"user"}],"stream":true,"stream_options":{"include_usage":true}}`,
	`{"model":"m","messages":[{"role":"user"}],"stream":"yes"}`,
	`{"model":"m","messages":[{"role":"user"}],"stream":null,"stream_options":null}`,
	`{"model":"m","messages":[{"role":"user"}],"stream_options":{"Include_Usage":true}}`,
	`{"model":"m","messages":[{"role":"user"}],"stream_options":7}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":1e3,"max_completion_tokens":2.0}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":0}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":-3}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":1.5}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":"9"}`,
	`{"model":"m","messages":[{"role":"user"}],"max_tokens":123456789012345678}`,
	`{"model":"m","messages":[{"role":"user"}],"temperature":1e400}`,
	`{"model":"m","messages":[{"role":"user"}],"temperature":-0.5,"top_p":"x"}`,
	`{"model":"m","messages":[{"role":"user"}],"stop":["a",null]}`,
	`{"model":"m","messages":[{"role":"user"}],"stop":["a",1]}`,
	`{"model":"m","messages":[{"role":"user"}],"stop":{}}`,
	`{"model":"m","messages":[{"role":"user"}],"tools":[],"functions":[{}],"response_format":{"type":"json_object"}}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image\/png;base64,AA\u0041A"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"QUJD"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","type":"text","image_url":{"url":"data:x"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":{"type":"tool_use"}}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c"}]},{"role":"tool","content":"r"}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[]}]}`,
	`{"model":"m","messages":[{"role":"tool","content":"r"}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`,
	`{"model":"m","input":[{"type":"function_call","name":"f"}]}`,
	`{"model":"m","input":[{"type":"function_call_output","output":"x"}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t"}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:abc"}]}],"response_format":{"type":"json_schema"}}`,
	`{"model":"m","messages":[{"role":"user"}],"text":{"format":{"type":"text"}},"response_format":{"type":"json_object"}}`,
	`{"model":"m","messages":[{"role":"user"}],"text":{"format":{"type":"text"},"format":{"type":"json_object"}}}`,
	`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:x"}]}],"text":{"format":{"type":"json_schema"}}}`,
	`{"model":"m","input":"x","previous_response_id":"","conversation":null}`,
	`{"model":"m","input":"x","previous_response_id":"r"}`,
	`{"model":"m","input":null}`,
	`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","max_tokens":null,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","max_tokens":10,"messages":[]}`,
	`{"model":"m","max_tokens":10,"messages":["x"],"stream":false}`,
	"{\"model\":\"m\xff\",\"messages\":[{\"role\":\"us\xfeer\"}],\"k\xff\":1,\"k\xfe\":2}",
	`{"model":"<&>","messages":[{"role":"user","content":"<b>\u2028</b>"}],"max_completion_tokens":5}`,
	`{"model":"m","messages":[{"role":"user","content":"a \"quoted\" \\ string \\"}],"x":{"y":[1,{"z":"\\\""}]}}`,
	`{"":1,"model":"m","messages":[{"role":"user"}],"max_completion_tokens":null}`,
}

// FuzzRequestReading: reading a body where it lies refuses what decoding
// it refused, with the same words, reads the same fields and needs, and
// gives each provider a body that decodes to what the map's encoding
// decoded to.
func FuzzRequestReading(f *testing.F) {
	for _, s := range readingSeeds {
		for i := range APIs {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		api := APIs[int(which)%len(APIs)]
		h := http.Header{"Anthropic-Version": {"2023-06-01"}, "Anthropic-Beta": {"b"}}
		want, wantErr := refParseRequest(api, body, h)
		got, err := parseRequest(api, body, h)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%s %q: refused %v, decoding refused %v", api, body, err, wantErr)
		}
		if err != nil {
			var re, wre *requestError
			if !errors.As(err, &re) || !errors.As(wantErr, &wre) || *re != *wre {
				t.Fatalf("%s %q: refused %#v, decoding refused %#v", api, body, err, wantErr)
			}
			return
		}
		g := refRequest{api: got.api, body: got.body, raw: want.raw, model: got.model, stream: got.stream, includeUsage: got.includeUsage,
			maxTokens: got.maxTokens, stateful: got.stateful, version: got.version, beta: got.beta}
		if !reflect.DeepEqual(g, *want) {
			t.Fatalf("%s %q:\nread    %+v\ndecoded %+v", api, body, g, *want)
		}
		if !reflect.DeepEqual(got.members(), want.raw) {
			t.Fatalf("%s %q: members %v, decoded %v", api, body, got.members(), want.raw)
		}
		if n, wn := got.scanNeeds(), want.scanNeeds(); n != wn {
			t.Fatalf("%s %q: needs %+v, decoded %+v", api, body, n, wn)
		}
		v, ok := want.raw["max_completion_tokens"]
		for _, set := range []map[string]json.RawMessage{nil, {"max_completion_tokens": nil, "max_tokens": v}} {
			if set != nil && !ok {
				continue
			}
			for _, model := range []string{got.model, "other-model", `we"ird <&> ` + "\u2028"} {
				b := got.withModel(model, set)
				if !sameJSON(b, want.withModel(model, set)) {
					t.Fatalf("%s %q, model %q, set %v: sent %q, decoding sent %q", api, body, model, set, b, want.withModel(model, set))
				}
				if model == got.model && set == nil && !got.dup && !bytes.Equal(b, body) {
					t.Fatalf("%s %q: the same model, yet the body was not sent as is: %q", api, body, b)
				}
			}
		}
	})
}

// sameJSON: a and b decode to the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestStringEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`"abc" x`, 5},
		{`"a\"b" x`, 6},
		{`"a\\" x`, 5},
		{`"a\\\"" x`, 7},
		{`"" x`, 2},
		{`"\\\\" x`, 6},
	} {
		if got := stringEnd([]byte(c.in), 0); got != c.want {
			t.Errorf("stringEnd(%s) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestKeySet_Add(t *testing.T) {
	var k keySet
	for i := range 40 {
		if k.add([]byte{byte('a' + i%26), byte('0' + i/26)}) {
			t.Fatalf("key %d seen before", i)
		}
	}
	for i := range 40 {
		if !k.add([]byte{byte('a' + i%26), byte('0' + i/26)}) {
			t.Fatalf("key %d not seen before", i)
		}
	}
}

// FuzzValidJSON: validJSON says what json.Valid says.
func FuzzValidJSON(f *testing.F) {
	for _, s := range readingSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		``, ` `, `0`, `-0`, `-`, `01`, `1.`, `1.5e`, `1.5e+3`, `1E-3`, `-1.0e10`, `.5`, `+1`, `1e`, `2.e3`,
		`true`, `tru`, `truex`, `false `, ` null`, `nul`, `"`, `""`, `"\"`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\/\b\f\n\r\t"`,
		"\"a\x01b\"", "\"\xff\xfe\"", "\"\u2028\"", `{}`, `[]`, `{`, `[`, `]`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`,
		`{,}`, `{"a":1 "b":2}`, `[1 2]`, `{"a":[{"b":[]}]}`, `{"a":1}}`, `[[]]]`, `{"a":1} x`, "{\"a\":1}\t\n\r ", `{1:2}`, `{"a"::1}`,
		`[{"a":1},{"b":[true,false,null]}]`, `"\ud800"`, `{"a":"b"}{}`,
		strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting),
		strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1),
		strings.Repeat(`{"a":`, maxNesting) + "1" + strings.Repeat("}", maxNesting),
		strings.Repeat(`{"a":`, maxNesting+1) + "1" + strings.Repeat("}", maxNesting+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
		}
	})
}

// FuzzMayBeError: a chunk mayBeError passes over is one provider.ParseError
// finds no error in.
func FuzzMayBeError(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","choices":[{"delta":{"content":"hi"}}]}`,
		`{"error":{"message":"overloaded","type":"server_error","code":502}}`,
		`{"ERROR":{"message":"x"}}`, `{"\u0065rror":"boom"}`, `{"error":null}`, `{"error":null,"Error":{"message":"x"}}`,
		`{"error":{"message":"x"},"error":null}`, `{"type":"error","error":{"type":"overloaded_error","message":"x"}}`,
		`{"error":"model not found"}`, `[{"error":1}]`, `"error"`, `null`, `{"error":`, ` {"error":1} `, `{"errors":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if e := provider.ParseError(b); e.Shape != provider.ShapeUnknown && !mayBeError(b) {
			t.Fatalf("%q: ParseError read %+v, mayBeError passed it over", b, e)
		}
	})
}
