// Package vllm is the vLLM adapter.
//
// Requests: OpenAI-compatible POST /v1/chat/completions, /v1/completions,
// /v1/embeddings; the model is the body's "model" field (a served name or
// a LoRA adapter id listed by GET /v1/models). Streaming is SSE
// (`data: {json}\n\n`, ending with `data: [DONE]`); usage comes in a last
// chunk when stream_options.include_usage is true.
// Health: GET /health answers 200 once the engine is up (no separate
// readiness path; 503/no answer while loading or dead).
// Load: /metrics on the serving port. Names carry the "vllm:" prefix, or
// "ray_vllm:" when vLLM runs inside Ray Serve LLM; KV-cache usage is
// gpu_cache_usage_perc (V0) or kv_cache_usage_perc (V1), a fraction 0..1.
//
// The adapter is stateless and safe for concurrent use.
package vllm
