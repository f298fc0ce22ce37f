package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Identifiers are kept as given where the other side accepts them, and
// mapped so that a round trip gives the original back.

// openAICompletionID is the chat completion id for an Anthropic message:
// "chatcmpl-" + its id, so the origin stays visible ("chatcmpl-msg_01…").
func openAICompletionID(messageID string) string {
	if strings.HasPrefix(messageID, "chatcmpl-") {
		return messageID
	}
	return "chatcmpl-" + messageID
}

// anthropicMessageID is the message id for an OpenAI completion: a
// "chatcmpl-msg_…" id made by openAICompletionID comes back as "msg_…";
// any other gets "msg_" in front ("msg_chatcmpl-B9M…").
func anthropicMessageID(completionID string) string {
	if rest, ok := strings.CutPrefix(completionID, "chatcmpl-"); ok && strings.HasPrefix(rest, "msg_") {
		return rest
	}
	if strings.HasPrefix(completionID, "msg_") {
		return completionID
	}
	return "msg_" + completionID
}

// anthropicToolID is the tool_use id for an OpenAI tool call id. Anthropic
// takes ids matching ^[a-zA-Z0-9_-]+$, which OpenAI's call_… ids do: they
// are kept. Another id is hashed, the same way every time, so a tool_use
// and the tool_result that answers it (both translated from the same
// OpenAI id) still match.
func anthropicToolID(id string) string {
	ok := id != ""
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			ok = false
			break
		}
	}
	if ok {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "toolu_" + hex.EncodeToString(sum[:12])
}
