// Package gateway is Switchyard's data path: the client listener (HTTP/1.1
// through fasthttp, HTTP/2 and gRPC through golang.org/x/net/http2, on one
// port), routing a request to a route (host, path prefix, header, the
// OpenAI "model" field, the KServe v2 model path, the gRPC model_name
// field, Ray Serve route prefixes), picking a node from the route's
// balancer.Table, forwarding with per-node connection pools, streaming
// both ways, retries on a different node, a circuit breaker per node,
// admission limits, one error-to-status mapping, telemetry, reload and
// graceful shutdown, plus the admin port.
//
// The hot path (Gateway.serveHTTP1) loads the current state and the route's
// table once per request from atomic pointers, takes no lock other
// requests contend on, and allocates nothing of its own on the buffered
// path (see alloc_test.go for what fasthttp itself still allocates).
//
// Tables are built by one owner goroutine per route (route.run), on every
// discovery update and on a weight ticker; the gateway is the only place
// that turns a discovery.Node into a balancer.Node.
//
// Circuit breakers (sony/gobreaker/v2) are fed off the hot path: a request
// reports to its node's breaker only when it failed, or when it succeeded
// after earlier failures, so the breaker's consecutive-failure count is
// exact while the common success path takes no lock. When a breaker opens
// (or goes half-open) the node is excluded from picks at once
// (balancer.ExcludeBreaker). Half-open trials never use client traffic:
// the route's prober goroutine runs a health probe (GET Route.HealthPath,
// or a TCP connect when it is empty) through the breaker once the open
// timeout has passed; a successful probe closes the breaker and the node
// takes traffic again.
//
// Issue 6 hooks: a route may carry Split and Shadow blocks (see config.go).
// The request path resolves a route's variant in resolveVariant and offers a
// finished primary request to the mirror in offerShadow; both are no-ops
// until gateway/split and gateway/shadow are wired in.
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise. The package never keeps a fasthttp RequestCtx, Request or
// Response after a handler returns.
package gateway
