// Package sglang is the SGLang adapter.
//
// Requests: native POST /generate ({"text": ..., "sampling_params": ...},
// stream=true gives SSE ending with `data: [DONE]`) and the
// OpenAI-compatible /v1/chat/completions and /v1/completions (model in
// the body). Health: GET /health (200 when the scheduler answers) and GET
// /health_generate (runs a 1-token generation; slower, stronger).
// Load: /metrics when launched with --enable-metrics:
// sglang:num_running_reqs, sglang:num_queue_reqs and sglang:token_usage
// (KV-pool token usage, a fraction 0..1), labelled {model_name, tp_rank}.
//
// The adapter is stateless and safe for concurrent use.
package sglang
