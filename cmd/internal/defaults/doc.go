// Package defaults holds the addresses the fusebox commands agree on when
// nothing is configured: the coordinator and the sidecar default to the
// same Redis and find each other on loopback. It owns no behaviour, only
// these values.
package defaults
