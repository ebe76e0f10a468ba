// Package telemetry owns the gateway's metrics and traces: per-route,
// per-model and per-node counters and histograms kept in atomics on the
// hot path and read at scrape time into a Prometheus registry (with the
// OTel meter of the other packages' instruments, the Go runtime and
// process collectors, and build information), and the tracer
// (parent-based sampling, OTLP/HTTP export) with the OpenTelemetry GenAI
// span attributes.
//
// It never keeps a request and never blocks one: recording is atomic
// adds, takes no lock and allocates nothing (alloc_test.go). Everything
// here is safe for concurrent use.
//
// # Series
//
//	switchyard_gateway_requests_total{route,model,code}          counter
//	switchyard_gateway_request_duration_seconds{route,model}     histogram, received to answered
//	switchyard_gateway_time_to_first_token_seconds{route,model}  histogram, streams: received to first output event
//	switchyard_gateway_inter_token_latency_seconds{route,model}  histogram, streams: between output events
//	switchyard_gateway_tokens_total{route,model,type}            counter, type="input"|"output", from the engines' usage
//	switchyard_gateway_tenant_tokens_total{tenant,route,model,type}  counter, the same per tenant (API keys on)
//	switchyard_gateway_retries_total{route}                      counter
//	switchyard_gateway_fallbacks_total{route,reason}             counter, reason="5xx"|"429"|"saturated"
//	switchyard_gateway_ejections_total{route}                    counter, circuit breakers opened
//	switchyard_gateway_node_requests_total{route,node,code}      counter
//	switchyard_gateway_node_upstream_seconds{route,node}         summary: _sum and _count only
//	switchyard_gateway_node_time_to_first_token_seconds{route,node}  summary: _sum and _count only
//	switchyard_gateway_queue_wait_seconds{route,class}           histogram, wait in the route's queue of requests that got a slot
//	switchyard_gateway_queue_requests_total{route,class,outcome} counter, requests that found their route full, by how they left
//	switchyard_build_info{version,revision,go_version}           gauge, 1
//	go_*, process_*                                              client_golang's collectors
//
// class is the priority class (flow.Class: interactive, batch); outcome
// is flow.Outcome: dispatched (got a slot), timeout, cancelled (the
// client went away), displaced (a more urgent request took its place),
// rejected (the queue was full on arrival).
//
// Other packages register their instruments on Meter, into the same
// registry (the OTel exporter adds _total to counters):
//
//	switchyard_gateway_inflight{route}                  gauge (gateway/route)
//	switchyard_gateway_queue_depth{route,class}         gauge, requests waiting (gateway/route)
//	switchyard_gateway_queue_slots{route}               gauge, per-node limit × ready nodes (gateway/route)
//	switchyard_gateway_node_weight{route,node}          gauge (gateway/route)
//	switchyard_gateway_node_inflight{route,node}        gauge (gateway/route)
//	switchyard_gateway_node_health_excluded{route,node} gauge, 0 or 1 (gateway/route)
//	switchyard_gateway_node_breaker_state{route,node}   gauge, 0 closed, 1 half-open, 2 open (gateway/route)
//	switchyard_gateway_health_checks_total{route,node,result}   counter (gateway/health)
//	switchyard_gateway_node_exclusions_total{route,node,reason} counter (gateway/health)
//	switchyard_discovery_*{app} and {server}            the Resource tier client (discovery)
//	switchyard_split_*, switchyard_shadow_*             A/B splits, mirrors (gateway/split, shadow)
//
// deploy/grafana/switchyard.json charts them; its test (gateway,
// TestGrafanaDashboard) checks every query against a live scrape.
//
// code is the result class: 2xx, 3xx, 4xx, 5xx, cancelled (the client
// went away: 499) or other. A series appears once it has counted
// something.
//
// # Labels
//
// Every series counts its requests once: there is no "all routes" or
// "all models" series beside the others, so sum() over any label is the
// total.
//
// route is the name of the route that answered. route="" holds the
// answers given before a route was chosen (no route for the model: 404;
// a malformed body: 400; the gateway full before matching: 503); it has
// only requests_total and request_duration_seconds, with model="".
//
// model is bounded by the configuration: one of the model names the
// route's match lists (Match.Models, without "*"), "other" for any other
// model a request named (a "*" route, a host or path route), "" when the
// request named none. ModelIndex.Lookup maps a request's model to its
// series once per request.
//
// tenant is a tenant's name from the API-key file; at most
// MaxTenantsPerModel tenants per route and model get their own series,
// later ones count under tenant="other".
//
// Per node, requests and the time to first token are kept as counters
// and a summary without quantiles (sum and count: the mean), not as
// histograms: a route may have thousands of nodes, and a histogram per
// node would multiply its series by the bucket count.
package telemetry
