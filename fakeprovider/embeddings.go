package fakeprovider

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// DefaultDimensions is the length of the fake's embeddings when the
// request asks for no dimensions.
const DefaultDimensions = 8

// Embedding is the vector the fake answers for an input (a string, or a
// token array written as JSON) under a model: the same every time,
// values in [-1, 1).
func Embedding(model, input string, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", model, input, i)))
		v[i] = float32(binary.BigEndian.Uint32(sum[:4]))/float32(1<<31) - 1
	}
	return v
}

// embeddings answers /v1/embeddings (OpenAI, and Ollama's compatible
// endpoint): input is a string, an array of strings, an array of tokens
// or an array of token arrays; encoding_format float or base64.
func (s *Server) embeddings(w http.ResponseWriter, _ *http.Request, body []byte, req request, _ *Fault) {
	var r struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
	}
	bad := func(msg string) {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": "input", "code": nil}})
	}
	if err := json.Unmarshal(body, &r); err != nil {
		bad("We could not parse the JSON body of your request.")
		return
	}
	if req.Model == "" {
		bad("you must provide a model parameter")
		return
	}
	var inputs []string
	var one string
	var many []string
	var tokens []int
	var tokenLists [][]int
	switch {
	case json.Unmarshal(r.Input, &one) == nil:
		inputs = []string{one}
	case json.Unmarshal(r.Input, &many) == nil:
		inputs = many
	case json.Unmarshal(r.Input, &tokens) == nil:
		b, _ := json.Marshal(tokens)
		inputs = []string{string(b)}
	case json.Unmarshal(r.Input, &tokenLists) == nil:
		for _, t := range tokenLists {
			b, _ := json.Marshal(t)
			inputs = append(inputs, string(b))
		}
	default:
		bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
		return
	}
	if len(inputs) == 0 || len(inputs) > 2048 {
		bad("'$.input' must have 1 to 2048 items")
		return
	}
	dims := DefaultDimensions
	if r.Dimensions != nil {
		if *r.Dimensions < 1 || *r.Dimensions > 4096 {
			bad("'$.dimensions' must be from 1 to 4096")
			return
		}
		dims = *r.Dimensions
	}
	data := make([]any, 0, len(inputs))
	n := 0
	for i, in := range inputs {
		if in == "" {
			bad(fmt.Sprintf("'$.input[%d]' is invalid: it must not be empty", i))
			return
		}
		n += len(strings.Fields(in))
		v := Embedding(req.Model, in, dims)
		var emb any = v
		if r.EncodingFormat == "base64" {
			raw := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(raw)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": emb})
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": max(n, 1), "total_tokens": max(n, 1)}})
}
