package provider

import "testing"

func TestResponsesStreamError(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       *StreamError
	}{
		// The API reference's error event, and a response.failed whose
		// response carries its error object.
		{"error", `{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}`,
			&StreamError{Type: "error", Code: "ERR_SOMETHING", Message: "Something went wrong"}},
		{"response.failed", `{"type":"response.failed","response":{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"The model failed to generate a response."}},"sequence_number":7}`,
			&StreamError{Type: "response.failed", Code: "server_error", Message: "The model failed to generate a response."}},
		{"error", `not json`, &StreamError{Type: "error"}},
		{"response.output_text.delta", `{"type":"response.output_text.delta","delta":"Hi"}`, nil},
		{"response.completed", `{"type":"response.completed","response":{"status":"completed"}}`, nil},
	} {
		got := ResponsesStreamError(tc.name, []byte(tc.data))
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("%s: %+v, want no error", tc.name, got)
		case tc.want != nil && (got == nil || *got != *tc.want):
			t.Errorf("%s %s: %+v, want %+v", tc.name, tc.data, got, tc.want)
		}
	}
	for name, done := range map[string]bool{"response.completed": true, "response.incomplete": true, "response.failed": false, "response.created": false} {
		if ResponsesStreamDone(name) != done {
			t.Errorf("ResponsesStreamDone(%s) = %v", name, !done)
		}
	}
}

func TestParseModelList(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
		err        bool
	}{
		{"OpenAI", `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},{"id":"text-embedding-3-small","object":"model","created":1705948997,"owned_by":"system"}]}`,
			[]string{"gpt-4o-mini", "text-embedding-3-small"}, false},
		{"Anthropic", `{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-sonnet-4-5-20250929"}`,
			[]string{"claude-sonnet-4-5-20250929"}, false},
		{"Ollama's /v1/models, an empty id left out", `{"object":"list","data":[{"id":"llama3.2:1b","object":"model","created":1730000000,"owned_by":"library"},{"id":""}]}`,
			[]string{"llama3.2:1b"}, false},
		{"an empty list", `{"object":"list","data":[]}`, []string{}, false},
		{"Ollama's native /api/tags", `{"models":[{"name":"llama3.2:1b"}]}`, nil, true},
		{"an HTML page", `<html>502</html>`, nil, true},
		{"ids not strings", `{"data":[{"id":7}]}`, nil, true},
	} {
		got, err := ParseModelList([]byte(tc.body))
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("%s: %q %v", tc.name, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
	}
}
