package fakeprovider

import (
	"fmt"
	"io"
	"net/http"
)

// writeError answers a status or quota fault in the provider's own shape.
// key, when not empty, is echoed in the message.
func writeError(w http.ResponseWriter, provider string, f *Fault, key string) {
	status := f.Status
	if f.Kind == FaultQuota {
		status = http.StatusTooManyRequests
		if provider == "anthropic" {
			status = http.StatusPaymentRequired
		}
	}
	if f.HTML && status >= 500 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, fmt.Sprintf("<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>cloudflare</center></body></html>\n",
			status, http.StatusText(status), status, http.StatusText(status)))
		return
	}
	switch provider {
	case "anthropic":
		typ, msg := anthropicError(status)
		if f.Kind == FaultQuota {
			typ, msg = "billing_error", "Your credit balance is too low to access the Anthropic API."
		}
		if key != "" {
			msg += " (key: " + key + ")"
		}
		writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
	case "ollama":
		writeJSON(w, status, map[string]string{"error": ollamaError(status)})
	default:
		e := openAIError(status)
		if f.Kind == FaultQuota {
			e = map[string]any{"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": nil, "code": "insufficient_quota"}
		}
		if key != "" {
			e["message"] = fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", key)
		}
		writeJSON(w, status, map[string]any{"error": e})
	}
}

func openAIError(status int) map[string]any {
	e := map[string]any{"param": nil, "code": nil}
	switch status {
	case 400:
		e["message"], e["type"], e["param"], e["code"] = "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.", "invalid_request_error", "messages", "context_length_exceeded"
	case 401:
		e["message"], e["type"], e["code"] = "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
	case 403:
		e["message"], e["type"], e["code"] = "Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"
	case 404:
		e["message"], e["type"], e["param"], e["code"] = "The model does not exist or you do not have access to it.", "invalid_request_error", "model", "model_not_found"
	case 408:
		e["message"], e["type"] = "Request timed out.", "timeout"
	case 413:
		e["message"], e["type"] = "Request entity too large.", "invalid_request_error"
	case 429:
		e["message"], e["type"], e["code"] = "Rate limit reached for requests. Please try again in 7s.", "requests", "rate_limit_exceeded"
	case 502:
		e["message"], e["type"], e["code"] = "Bad gateway.", "cf_bad_gateway", 502
	case 503:
		e["message"], e["type"] = "The server is overloaded or not ready yet.", "server_error"
	case 504:
		e["message"], e["type"] = "Gateway timeout.", "server_error"
	default:
		e["message"], e["type"] = "The server had an error while processing your request.", "server_error"
	}
	return e
}

func anthropicError(status int) (string, string) {
	switch status {
	case 400:
		return "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
	case 401:
		return "authentication_error", "invalid x-api-key"
	case 402:
		return "billing_error", "Your credit balance is too low to access the Anthropic API."
	case 403:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		return "not_found_error", "model: claude-nonexistent"
	case 413:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		return "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
	case 529:
		return "overloaded_error", "Overloaded"
	case 504:
		return "timeout_error", "Request timed out"
	default:
		return "api_error", "Internal server error"
	}
}

func ollamaError(status int) string {
	switch status {
	case 400:
		return "invalid request: messages is required"
	case 404:
		return "model 'llama3.2:1b' not found, try pulling it first"
	case 503:
		return "server busy, please try again.  maximum pending requests exceeded"
	default:
		return fmt.Sprintf("llama runner process has terminated: exit status %d", status)
	}
}

func badJSON(w http.ResponseWriter, provider string, err error) {
	switch provider {
	case "anthropic":
		writeJSON(w, 400, map[string]any{"type": "error", "error": map[string]string{"type": "invalid_request_error", "message": "invalid JSON: " + err.Error()}})
	case "ollama":
		writeJSON(w, 400, map[string]string{"error": "invalid JSON: " + err.Error()})
	default:
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "We could not parse the JSON body of your request.", "type": "invalid_request_error", "param": nil, "code": nil}})
	}
}
