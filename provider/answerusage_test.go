package provider

import "testing"

func TestHasUsageObject(t *testing.T) {
	for in, want := range map[string]bool{
		`{"usage":null}`:                         false,
		`{"usage": {"prompt_tokens":1}}`:         true,
		`{"text":"\"usage\"","usage":{}}`:        true,
		`{"choices":[{"delta":{"content":""}}]}`: false,
	} {
		if got := HasUsageObject([]byte(in)); got != want {
			t.Errorf("HasUsageObject(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestAnswerUsage_ReadsEachProvidersUsage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []string
		model   string
		in, out int64
	}{
		{"OpenAI answer", []string{`{"model":"gpt-4o","usage":{"prompt_tokens":10,"completion_tokens":2}}`}, "gpt-4o", 10, 2},
		{"Anthropic answer with cache reads", []string{`{"model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":7}}`}, "claude", 115, 7},
		{"Anthropic stream", []string{`{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":9,"output_tokens":1}}}`, `{"type":"message_delta","usage":{"output_tokens":30}}`}, "claude", 9, 30},
		{"Responses stream", []string{`{"type":"response.created","response":{"model":"gpt-4.1","usage":null}}`, `{"type":"response.completed","response":{"model":"gpt-4.1","usage":{"input_tokens":4,"output_tokens":8}}}`}, "gpt-4.1", 4, 8},
		{"embeddings", []string{`{"model":"text-embedding-3-small","usage":{"prompt_tokens":3,"total_tokens":3}}`}, "text-embedding-3-small", 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ai AnswerUsage
			for _, e := range tc.events {
				if !ai.Read([]byte(e)) {
					t.Fatalf("did not read %s", e)
				}
			}
			if ai.Model != tc.model || ai.Input != tc.in || ai.Output != tc.out || ai.HasOutput != (tc.out > 0) || !ai.HasInput {
				t.Fatalf("read %+v, want model %s in %d out %d", ai, tc.model, tc.in, tc.out)
			}
		})
	}
}

func TestAnswerUsage_NotAnObject(t *testing.T) {
	var u AnswerUsage
	for _, in := range []string{"[DONE]", "", "[1,2]", `"usage"`} {
		if u.Read([]byte(in)) {
			t.Errorf("read %q as an answer", in)
		}
	}
	if u != (AnswerUsage{}) {
		t.Fatalf("garbage changed the usage: %+v", u)
	}
}
