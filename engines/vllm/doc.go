// Package vllm is the vLLM adapter.
//
// Requests: OpenAI-compatible POST /v1/chat/completions, /v1/completions,
// /v1/embeddings; the model is the body's "model" field (a served name or
// a LoRA adapter id listed by GET /v1/models). Streaming is SSE
// (`data: {json}\n\n`, ending with `data: [DONE]`); usage comes in a last
// chunk when stream_options.include_usage is true.
// Health: GET /health answers 200 once the engine is up (no separate
// readiness path; 503/no answer while loading or dead).
// Load: /metrics on the serving port. Names carry the "vllm:" prefix; under
// Ray Serve LLM Ray exports them as ray_vllm_<name> (':' sanitised to '_'
// by current vLLM; older Ray kept ray_vllm:<name>). KV-cache usage is
// kv_cache_usage_perc (gpu_cache_usage_perc before 0.9), a fraction 0..1.
// V1 labels every series with an `engine` index per data-parallel engine:
// running and waiting are summed over engines, KV usage averaged.
// vllm:engine_sleep_state{sleep_state="awake"} 0 means the engine sleeps
// (sleep mode): it reports no load but cannot serve.
//
// The dialect is data in engines/dialects.go; this package keeps Name,
// Spec and ParseLoad for callers. Stateless and safe for concurrent use.
package vllm
