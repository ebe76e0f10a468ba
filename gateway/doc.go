// Package gateway is Switchyard's data path (issue 4): what clients touch.
//
// # What it owns
//
//   - One client port (listener.go): each connection is sniffed without
//     consuming bytes (MSG_PEEK) and goes to fasthttp (HTTP/1.1) or to
//     HTTP/2 (the h2c prior-knowledge preface, or TLS with ALPN h2), gRPC
//     included. HTTP/2 is golang.org/x/net/http2 as bundled in net/http
//     (x/net's own Server and Transport are deprecated in favour of
//     http.Server/http.Transport with Protocols and HTTP2Config; it is the
//     same implementation, rapid-reset mitigations included). A separate admin port (admin.go) serves
//     /healthz, /readyz, /metrics, /admin/routes, /admin/nodes,
//     POST /admin/nodes/{route}/{node}/exclude|include and /debug/pprof.
//   - Routing (proxy.go, route.go, extract.go): routes match on the OpenAI
//     "model" field (read by a validating scanner, not a decode), the
//     KServe v2 /v2/models/{name}/ path, gRPC ModelInferRequest.model_name
//     (protobuf field 1 read with protowire), host, path prefix, headers
//     and Ray Serve route prefixes. Model-only routes are found through a
//     map; the others are tried in config order; a "*" route takes the
//     rest. GET /v1/models is answered from the gateway's own tables;
//     anything unmatched gets a 404 naming what was asked and what exists.
//   - Forwarding: one fasthttp.HostClient (HTTP/1.1) and one h2c
//     http.Transport (HTTP/2 prior knowledge, for gRPC) per node of a
//     route, keep-alive pooled.
//     Responses stream to the client as they arrive when the request asks
//     for it ("stream": true, Accept: text/event-stream, generate_stream)
//     or the route says so; otherwise they are buffered (the zero-
//     allocation path). Request bodies are buffered up to
//     Limits.MaxBodyBytes, or streamed above Limits.StreamBodyOver.
//   - Retries on a different node (balancer.Table.PickAvoiding on the one
//     table snapshot of the request) for failures before any response
//     byte: refused, reset, closed, GOAWAY, a 503 (the node is then
//     excluded as draining for the breaker's open period). Never after the
//     first response byte, never on timeouts; bounded per request and by a
//     per-route retry budget.
//   - A circuit breaker per node (sony/gobreaker/v2), fed off the hot path:
//     a request reports to gobreaker only when it failed (connection error,
//     timeout, 5xx), or when it succeeded after failures, so the
//     consecutive-failure count is exact while the common success path is
//     one atomic load. Open or half-open excludes the node from picks at
//     once (balancer.ExcludeBreaker). Half-open trials never use client
//     traffic: the route's owner runs a health probe (GET
//     RouteConfig.HealthPath, or a TCP connect) through the breaker once
//     the open period has passed; success closes it.
//   - Per-route timeouts: connect (dial), first byte and idle between
//     chunks (enforced per read on the upstream connection, see
//     deadlineConn; for gRPC with timers on the call's context) and total.
//   - Admission: Limits.MaxConcurrent per gateway (503 + Retry-After) and
//     Limits.MaxPerNode per node (a full node is skipped; all full: 429 +
//     Retry-After). Nothing queues.
//   - Errors: one mapping, classify in errors.go, to a status and OpenAI's
//     error shape {"error":{"message","type","code","request_id"}}, or a
//     gRPC status (Trailers-Only) for gRPC calls. Every response carries
//     X-Request-Id (the client's, or generated).
//   - Telemetry (metrics.go, tracing.go): counters and gauges through the
//     OTel Prometheus exporter, read at scrape time from atomics (requests
//     by route and class, retries, ejections, in-flight, node weights and
//     in-flight with attribute sets built when tables are built), latency
//     histograms from atomic buckets; OTel tracing with parent-based
//     sampling at Telemetry.TraceRatio, off by default and then a nil
//     check; traceparent is always forwarded. Telemetry.OTLPEndpoint
//     exports the sampled spans over OTLP/HTTP in batches; Gateway.Close
//     (called by Serve on its way out) flushes them.
//   - Reload (Gateway.Reload; SIGHUP or a file change in cmd) and graceful
//     shutdown (Serve returns after in-flight requests finish, bounded by
//     Limits.ShutdownTimeout). Unchanged routes survive a reload whole.
//   - Issue 6 hooks (hooks.go): a route's split (gateway/split) picks the
//     variant whose target route serves the request and names it in the
//     response; a route's mirror (gateway/shadow) is offered the request
//     before forwarding and the primary's outcome after it.
//
// The gateway is the only place that turns a discovery.Node into a
// balancer.Node (toNode). Route tables are built by one owner goroutine
// per route, on discovery updates and on the weight ticker.
//
// # Hot path
//
// serveHTTP1 loads the state and the route's table once per request from
// atomic pointers and uses that snapshot for retries; it takes no lock
// other requests contend on and allocates nothing on the buffered path
// (alloc_test.go measures a whole proxied request, client and node
// included, at 0 allocations). Per-request logging is off unless
// Telemetry.AccessLog is set. Socket deadlines are lazy (deadline.go):
// fasthttp moves them several times per request, nearly always later, so
// the one in force is kept and a timeout before the asked-for deadline
// resumes the call; the start time is fasthttp's ctx.Time(), and
// hop-by-hop headers are only deleted when a raw header line may name one.
// Most of the remaining cost per request is the kernel's (two writes,
// two reads and, with Go's netpoller, about two reads that find nothing
// yet: see bench/results/proxy-compare.md for CPU per request against
// nginx).
//
// # Limits of this version
//
// Split and shadow apply to HTTP/1.1 and HTTP/2 requests, not to gRPC
// calls. HTTP/2 requests that are not gRPC are read whole (up to
// MaxBodyBytes) and forwarded through the HTTP/1.1 pools.
// Client cancellation is detected (499) for streamed responses and for
// HTTP/2, not while a buffered HTTP/1.1 request waits for its node.
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise. The package never keeps a fasthttp RequestCtx, Request or
// Response after a handler returns, except a streamed response's body,
// which fasthttp closes (relay.CloseWithError) when the response is done.
package gateway
