package provider

// OpenAIFinishReason maps an Anthropic stop_reason to OpenAI's
// finish_reason: end_turn and stop_sequence → stop; max_tokens and
// model_context_window_exceeded → length; tool_use → tool_calls; refusal
// → content_filter. ok is false for the rest (pause_turn comes only with
// server tools, which are never translated).
func OpenAIFinishReason(stopReason string) (finish string, ok bool) {
	switch stopReason {
	case "end_turn", "stop_sequence":
		return "stop", true
	case "max_tokens", "model_context_window_exceeded":
		return "length", true
	case "tool_use":
		return "tool_calls", true
	case "refusal":
		return "content_filter", true
	}
	return "", false
}

// AnthropicStopReason maps an OpenAI finish_reason to Anthropic's
// stop_reason: stop → end_turn (OpenAI does not say whether a stop
// sequence matched); length → max_tokens; tool_calls → tool_use;
// content_filter → refusal. ok is false for the rest (function_call, the
// deprecated function calling, is never translated).
func AnthropicStopReason(finish string) (stopReason string, ok bool) {
	switch finish {
	case "stop":
		return "end_turn", true
	case "length":
		return "max_tokens", true
	case "tool_calls":
		return "tool_use", true
	case "content_filter":
		return "refusal", true
	}
	return "", false
}
