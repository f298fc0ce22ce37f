// Package deploy holds what runs fusebox outside this repository: the
// container images' build contexts (images/, filled by `make images`),
// the docker-compose cluster's config (compose/), the Helm chart
// (helm/fusebox) and the Grafana dashboard (grafana/fusebox.json).
//
// It has no Go code of its own. Its tests render the chart with Helm's
// engine and decode every manifest strictly into the Kubernetes API
// types, and check that every metric the dashboard queries is one the
// coordinator or the sidecar exports. It never talks to a cluster.
package deploy
