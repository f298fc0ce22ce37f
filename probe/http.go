package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/fusebox-io/fusebox/provider"
)

// maxBody caps how much of a response a canary reads.
const maxBody = 1 << 20

type httpCanary struct {
	spec    Spec
	headers map[string]string
	client  *http.Client
}

func (c *httpCanary) Timeout() time.Duration { return c.spec.Timeout }

func (c *httpCanary) Probe(ctx context.Context) Result {
	var body io.Reader
	if c.spec.Body != "" {
		body = bytes.NewBufferString(c.spec.Body)
	}
	return do(ctx, c.client, c.spec.Timeout, c.spec.Method, c.spec.URL, c.headers, body, func(status int, b []byte) (bool, string) {
		if len(c.spec.ExpectStatus) == 0 {
			if status >= 200 && status < 300 {
				return true, ""
			}
		} else if slices.Contains(c.spec.ExpectStatus, status) {
			return true, ""
		}
		return false, describe(status, b)
	})
}

// do sends one request within timeout and judges the response. Every
// failure to get one becomes a Result with a reason.
func do(ctx context.Context, client *http.Client, timeout time.Duration, method, url string, headers map[string]string, body io.Reader,
	judge func(status int, body []byte) (bool, string)) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := func(r Result) Result { r.Took = time.Since(start); return r }
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return res(Result{Reason: "bad request: " + err.Error()})
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	// A provider's logs (and the fake provider) can tell canaries apart.
	req.Header.Set(HeaderCanary, "1")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return res(Result{Reason: fmt.Sprintf("no answer within %s", timeout)})
		}
		return res(Result{Reason: "connection failed: " + scrub(err)})
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return res(Result{Status: resp.StatusCode, Reason: "response cut off: " + scrub(err)})
	}
	ok, reason := judge(resp.StatusCode, b)
	r := Result{OK: ok, Reason: reason, Status: resp.StatusCode}
	if !ok {
		// Retry-After, or the rate limits the answer says are exhausted
		// until their reset: the longer.
		r.RetryAfter = provider.RetryIn(resp.Header, time.Now())
	}
	return res(r)
}

// scrub keeps an error message short. Keys travel in headers, never in
// URLs, so an error cannot carry one; the URL is kept for diagnosis.
func scrub(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
