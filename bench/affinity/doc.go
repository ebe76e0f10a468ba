// Package affinity is the benchmark of issue 14: a discrete-event
// simulation of multi-turn chat traffic (and a batch tenant) on a fleet of
// LLM engines with prefix caches, comparing how policies place requests:
// Switchyard's default (balancer.Affinity over the default pick), the
// default pick alone, power of two choices, consistent hashing of the
// user, and faithful reproductions of the endpoint pickers of the Gateway
// API Inference Extension and llm-d (scorers over engine metrics and an
// approximate prefix index).
//
// The engines are modelled on vLLM (node.go): continuous batching with a
// slot limit, FCFS admission bounded by KV memory, a prefix cache of
// 16-token blocks (chained identities, LRU eviction of unreferenced
// blocks), prefill proportional to the uncached part of the prompt (one at
// a time per node), decode at a fixed time per token. The workload
// (workload.go) is drawn per conversation when it starts, so every policy
// sees the same conversations, turns, lengths and think times (common
// random numbers); only the timing of follow-up turns depends on the
// policy, as it does in reality.
//
// Balancer policies use the real balancer package (tables rebuilt every 3
// s, in-flight counts through Acquire/Complete, Affinity updated with each
// table); every policy sees engine metrics refreshed at the same interval.
// The burst scenario holds each node to its slots and queues the rest in
// gateway/flow's order (Fair): interactive first, tenants in turn, within
// the gateway's queue bounds (max_queued, and the deadlines by class:
// queue.timeout and queue.batch_timeout; BurstScenario says which it
// sets).
//
// Run is safe to call from several goroutines at once; each run owns its
// state.
package affinity
