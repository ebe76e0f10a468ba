// Package live is the live run of issue 14: the multi-turn chat workload
// of bench/affinity, scaled down, sent as streamed chat completions
// through a real gateway process to simulated engines on loopback, once
// with the route's affinity on (the default) and once with it off
// (load-only), at the same offered load, repeated and interleaved. It
// checks that the simulation's picture holds on the real data path: the
// prefix-cache hit rate rises and the time to first token falls with
// affinity on.
//
// Each run starts from nothing: a Resource instance, simulated vLLM
// engines of two card types (engines/sim, with a prefix cache and a
// prefill cost per uncached prompt token) each behind a real node agent
// that reads the engine's /metrics (so the gateway sees the engines'
// running and waiting requests and prefix-cache counters, as in
// production), and a `switchyard gateway` process whose route reads the
// nodes from Resource. A client in this process drives Poisson arrivals
// of conversations (and batch jobs) at a fraction of the fleet's decode
// capacity; each conversation sends its turns in order, every turn
// repeating the conversation so far (the assistant's answers as
// streamed), with think times between them. It measures the time to first
// token on the client (from sending the request to the first SSE event
// with content) and reads the prefix-cache hit rate from the engines' own
// metrics (vllm:prefix_cache_hits/queries) over the measured window.
//
// Run owns every process, server and goroutine it starts and stops them
// before it returns. Only one Run should run at a time on a machine: it
// measures latency.
package live
