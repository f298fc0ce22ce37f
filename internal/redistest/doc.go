// Package redistest starts Redis servers for tests: a real redis-server
// process on a free loopback port, a Redis Cluster of such processes
// (StartCluster), and the embedded server that `coordinator --dev` uses. A
// test that needs redis-server fails with a message saying how to install
// it; it never skips.
package redistest
