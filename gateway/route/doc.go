// Package route owns routing: the routes of one configuration (Set), how a
// request is matched to one (Set.Match: the OpenAI "model" read by a
// validating scanner, the KServe v2 path, the gRPC model_name field, host,
// path prefix, headers, Ray Serve prefixes), and each route's live table
// (Route: the balancer table built by the route's owner goroutine from
// the node lists its discovery source offers, plus the retry budget, the
// breaker prober and the route's health checker, gateway/health, which it
// hands the nodes of each new table and runs beside its owner). It turns
// discovery nodes into balancer nodes (toNode), passes each node's engine
// report (prefix-cache counters, LoRA adapters) to the route's
// balancer.Affinity with every table it builds, tells LoRA adapter names
// from base models (Route.AdapterKey: match.adapters, or adapters a node
// reports loaded) and creates an upstream.Node per endpoint.
//
// Requests read tables lock-free through atomic pointers; nothing here
// forwards a request (that is gateway/forward's job) or talks to a
// discovery service (the gateway hands lists to Route.Offer).
//
// Everything exported is safe for concurrent use unless its doc says
// otherwise.
package route
