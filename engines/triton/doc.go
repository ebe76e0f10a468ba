// Package triton is the NVIDIA Triton Inference Server adapter (KServe v2
// / Open Inference Protocol).
//
// Requests: HTTP POST /v2/models/{name}[/versions/{v}]/infer with a JSON
// body {"inputs":[{"name","shape","datatype","data"}], "outputs":[...]};
// the model is named in the path. gRPC (port 8001):
// inference.GRPCInferenceService/ModelInfer with model_name in field 1 of
// ModelInferRequest, and the bidirectional ModelStreamInfer for decoupled
// (token-streaming) models. The generate extension
// POST /v2/models/{name}/generate_stream streams SSE.
// Health: GET /v2/health/live (process up), GET /v2/health/ready (all
// models ready), GET /v2/models/{name}/ready (one model).
// Load: metrics port 8002, /metrics. With the TensorRT-LLM backend:
// nv_trt_llm_request_metrics{request_type="scheduled"} is running,
// {request_type="waiting"} waiting, and
// nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"} (else
// used/max) the KV-cache usage; that backend drains Triton's own queue at
// once, so nv_inference_pending_request_count would read ~0 while busy.
// Other backends: nv_inference_pending_request_count (per model, requests
// queued awaiting execution) is the waiting count, and running and KV
// are Unknown.
//
// The dialect is data in engines/dialects.go; this package keeps Name,
// Spec and ParseLoad for callers. Stateless and safe for concurrent use.
package triton
