// Package bench measures fusebox beside what users would pick instead, in
// the same run: per-call cost against gobreaker v2's local and
// distributed breakers, a cluster of replicas under a provider outage,
// the seed article's outage scenario end to end (cmd/outagesim), and the
// latency the sidecar adds to a provider beside nginx's proxy_pass.
//
// Numbers are reported, never asserted: machines are noisy, so results
// are compared as ratios within one run. The tests here only check that
// the harness itself works.
package bench
