package probe

import (
	"fmt"
	"strings"

	"github.com/fusebox-io/fusebox/provider"
)

// describe turns an error response into a short reason, understanding the
// OpenAI, Anthropic and Ollama error shapes (provider.ParseError);
// anything else (an HTML 502 page) is just its status.
func describe(status int, body []byte) string {
	head := fmt.Sprintf("HTTP %d", status)
	e := provider.ParseError(body)
	kind := e.Type
	if c := e.CodeString(); c != "" && len(e.Code) > 0 && e.Code[0] == '"' {
		kind = c // a string code says more than the type; a numeric one repeats the status
	}
	msg := e.Message
	switch {
	case kind != "" && msg != "":
		return head + ": " + clip(kind+": "+msg)
	case msg != "":
		return head + ": " + clip(msg)
	case kind != "":
		return head + ": " + clip(kind)
	}
	return head
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
