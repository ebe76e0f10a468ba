// Package loadgen is Switchyard's load generator: open loop (Poisson
// arrivals at a fixed rate, latency measured from each request's intended
// send time, so a stalled server cannot hide its stall — the
// coordinated-omission correction of wrk2) and closed loop (N workers, each
// sending its next request when the last one returns), over HTTP/1.1
// (fasthttp), SSE streaming (time to first token and to the last event) and
// gRPC (KServe v2 ModelInfer).
//
// Every run is bounded in time (Config.Duration) and may be bounded in
// count (Config.Requests); targets must be loopback addresses.
//
// Run owns every goroutine it starts and returns when they have stopped.
package loadgen
