// Package gateway is Switchyard's data path: what clients touch. It wires
// the parts below and owns their lifecycle (New, Serve, Reload, Close);
// the request path itself lives in the sub-packages, and their names
// follow a request:
//
//	frontend/   the client port: one listener, sniffed into fasthttp
//	            (HTTP/1.1) or internal/h2server (h2c, TLS+ALPN, gRPC);
//	            each translates its request into the core's view and
//	            writes the core's answer back
//	forward/    the forwarding core, once for every protocol: admission →
//	            match → split/shadow → pick → exchange with retries →
//	            relay → settle → telemetry; errors mapped to statuses in
//	            one place (classify)
//	route/      routes of one configuration, request matching (model,
//	            KServe path, gRPC field, host, path, headers, Ray prefix)
//	            and each route's live balancer table
//	health/     active health checks and outlier detection per route: a
//	            hung or failing node leaves the route within seconds
//	upstream/   one node of one route: its HTTP/1.1 pool (abortable
//	            exchanges), its HTTP/2 transport for gRPC, its circuit
//	            breaker; TLS to nodes (a route's tls block), and the
//	            certificate files re-read when they change
//	split/ shadow/ reqkey/   A/B splits, traffic mirroring, sticky keys
//	admin/      the admin port: health, readiness, metrics, admin API and
//	            page, pprof
//	telemetry/  metrics and traces
//	config/     the YAML schema, defaults and validation
//	deadline/   connections with lazy socket deadlines
//
// Node lists flow one way: a discovery source hands each new list to the
// routes of its app (route.Route.Offer); a route's owner goroutine
// rebuilds its table from it. A route reads one source (its `source:`):
// its static nodes, the Resource tier client (`discovery:`), a Ray
// dashboard (`ray:`, discovery/ray: one route per RUNNING Serve
// application by its route prefix, created and removed as applications
// come and go), or the Kubernetes API (`kubernetes:`,
// discovery/kubernetes). The root runs the sources under Serve
// (sources.go) and shows each route's staleness in /admin/routes and
// switchyard_gateway_route_stale. TestLayering (cmd/switchyard) enforces
// that the packages import each other only downwards in the order above.
//
// # Lifecycle
//
// New builds the sources and routes; Serve runs them; Reload keeps what
// did not change (routes, and sources whose block is the same). When
// Serve's context ends (SIGTERM), /readyz fails at once and requests are
// still served for Limits.DrainDelay; then the listener closes, in-flight
// requests finish within Limits.ShutdownTimeout, and every route and
// source goroutine stops before Serve returns.
//
// # Hot path
//
// A request loads the routing state and its route's table once from
// atomic pointers and uses that snapshot for retries; it takes no lock
// other requests contend on and allocates nothing on the buffered
// HTTP/1.1 path (alloc_test.go measures a whole proxied request, client
// and node included, at 0 allocations). Per-request logging is off unless
// Telemetry.AccessLog is set. Socket deadlines are lazy (deadline/).
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise.
package gateway
