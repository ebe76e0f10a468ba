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
// Load: metrics port 8002, /metrics: nv_inference_pending_request_count
// (per model, requests queued awaiting execution) is the waiting count.
// Triton has no running-request gauge and no KV-cache fraction, so those
// are Unknown.
//
// The adapter is stateless and safe for concurrent use.
package triton
