// Package sglang is the SGLang adapter.
//
// Requests: native POST /generate ({"text": ..., "sampling_params": ...},
// stream=true gives SSE ending with `data: [DONE]`) and the
// OpenAI-compatible /v1/chat/completions and /v1/completions (model in
// the body). Health: GET /health (200 when the scheduler answers) and GET
// /health_generate (runs a 1-token generation; slower, stronger).
// Load: /metrics when launched with --enable-metrics:
// sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage
// (KV-pool token usage, a fraction 0..1) and sglang:cache_hit_rate,
// labelled {model_name, engine_type, tp_rank, pp_rank, moe_ep_rank} and
// dp_rank under data parallelism. With --enable-metrics-for-all-schedulers
// every TP rank reports the same batch; one rank per DP group counts.
// Without --enable-metrics, GET /v1/loads gives the same numbers as JSON
// (engines.Scrape falls back to it on a 404).
//
// The dialect (names, rank rules) is data in engines/dialects.go; this
// package keeps Name, Spec and ParseLoad for callers. Stateless and safe
// for concurrent use.
package sglang
