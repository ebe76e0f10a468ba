// Package health keeps hung and failing nodes out of a route's picks
// (issue 12): active health checks (an HTTP GET on each node's health
// path, about every second) and outlier detection on what the forwarding
// core saw of the nodes' answers (time to first byte, success rate),
// after Envoy's. Both act through one balancer exclusion bit,
// balancer.ExcludeHealth, which this package alone sets and clears.
//
// One Checker per route. The route's owner hands it the route's nodes
// after each table build (SetMembers); the Checker's own goroutine (Run)
// schedules the probes on a bounded set of workers, judges the results
// and the outliers, and publishes what it decided (Status) for the admin
// API. The request path only feeds upstream.Node.ObserveFirstByte
// (atomics); nothing here runs on it.
//
// It never excludes the last node of a route that could take requests,
// never ejects more than the configured share of a route's nodes for
// outliers, and never excludes a node for lacking a health endpoint (a
// 404): such a node is watched by outlier detection alone. A TCP connect
// is never taken as a sign of life: a stopped process still completes
// handshakes.
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise.
package health
