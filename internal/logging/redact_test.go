package logging_test

import (
	"strings"
	"testing"

	"github.com/fusebox-io/fusebox/internal/logging"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379", "redis://127.0.0.1:6379"},
		{"redis://fusebox:s3cret@redis:6379/2", "redis://fusebox:xxxxx@redis:6379/2"},
		{"redis://:s3cret@redis:6379", "redis://:xxxxx@redis:6379"},
		{"redis://user@redis:6379", "redis://user@redis:6379"},
		{"rediss://u:p%40ss@redis:6380?dial_timeout=1s", "rediss://u:xxxxx@redis:6380?dial_timeout=1s"},
		{"redis+sentinel://s1:26379?master_name=m&password=s3cret&addr=s2:26379", "redis+sentinel://s1:26379?addr=s2%3A26379&master_name=m&password=xxxxx"},
		{"http://ops:s3cret@coordinator:8080", "http://ops:xxxxx@coordinator:8080"},
		{"redis://bad host:%zz", "(unparsable url)"},
	} {
		if got := logging.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(logging.RedactURL(tc.in), "s3cret") {
			t.Errorf("%q keeps the secret", tc.in)
		}
	}
	got := logging.RedactURLs("http://a:s3cret@c0:8080, http://c1:8080")
	if got != "http://a:xxxxx@c0:8080,http://c1:8080" {
		t.Errorf("RedactURLs = %q", got)
	}
}
