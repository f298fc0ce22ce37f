package sidecar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// cache keeps non-streamed answers in Redis, keyed by the route, the
// normalized request and the caller's user header, and coalesces
// concurrent identical requests into one provider call.
type cache struct {
	rdb    redis.UniversalClient
	prefix string
	group  singleflight.Group
}

// captured is a whole answer, as cached and as shared between coalesced
// requests.
type captured struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// recorder captures what a handler writes.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}

// key is the cache key: the route, the API (and for Messages the
// anthropic-version and -beta headers), the request with its JSON
// normalized (keys sorted, the streaming fields dropped), and the user
// header.
func (c *cache) key(route string, req *request, user string) string {
	norm := make(map[string]json.RawMessage, len(req.top))
	for _, m := range req.top { // a repeated key: the last one wins, as members() has it
		k, v := string(m.key), m.val
		if k == "stream" || k == "stream_options" {
			continue
		}
		var x any
		if json.Unmarshal(v, &x) == nil {
			v, _ = json.Marshal(x) // re-encoded: map keys sorted, spacing gone
		}
		norm[k] = v
	}
	body, _ := json.Marshal(norm)
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	if req.api != APIChat { // chat keys stay what they were
		h.Write([]byte(string(req.api) + "\x00" + req.version + "\x00" + req.beta + "\x00"))
	}
	h.Write(body)
	h.Write([]byte{0})
	h.Write([]byte(user))
	return c.prefix + ":cache:" + hex.EncodeToString(h.Sum(nil))
}

func (c *cache) get(ctx context.Context, key string) (*captured, error) {
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp captured
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, nil // unreadable: a miss, overwritten below
	}
	return &cp, nil
}

func (c *cache) set(ctx context.Context, key string, cp *captured, ttl time.Duration) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return c.rdb.Set(ctx, key, b, ttl).Err()
}

func (cp *captured) writeTo(w http.ResponseWriter, cacheState string) {
	for k, vs := range cp.Header {
		w.Header()[k] = vs
	}
	w.Header().Set(HeaderCache, cacheState)
	w.WriteHeader(cp.Status)
	_, _ = w.Write(cp.Body)
}
