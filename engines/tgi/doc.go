// Package tgi is the Hugging Face Text Generation Inference adapter.
//
// Requests: POST /generate and /generate_stream ({"inputs": ...,
// "parameters": {...}}; the stream is SSE `data:{json}\n\n` with no
// [DONE]), and the OpenAI-compatible POST /v1/chat/completions (SSE with
// `data: [DONE]`). A TGI server serves exactly one model; the "model"
// field is accepted and ignored ("tgi").
// Health: GET /health answers 200 when the model is loaded and a
// warm-up generation succeeded; 503 otherwise.
// Load: /metrics: tgi_batch_current_size (requests in the running batch)
// and tgi_queue_size (waiting). TGI exposes no KV-cache usage fraction,
// so KVCache is Unknown.
//
// The dialect is data in engines/dialects.go; this package keeps Name,
// Spec and ParseLoad for callers. Stateless and safe for concurrent use.
package tgi
