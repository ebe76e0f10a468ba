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

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "vllm"

func init() { engines.Register(adapter{}, "ray_vllm", "ray-vllm") }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string { return Name }

func (adapter) Spec() engines.Spec { return Spec }

// Spec describes vLLM's OpenAI-compatible server.
var Spec = engines.Spec{
	DefaultPort: 8000,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "/v1/chat/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/v1/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/v1/embeddings", Model: engines.ModelInBody, Stream: engines.StreamNone},
		{Method: "GET", Path: "/v1/models", Stream: engines.StreamNone},
	},
	MetricsPath: "/metrics",
	LivePath:    "/health",
	ReadyPath:   "/health",
}

// Names lists the metric families read, in preference order.
var Names = engines.LoadNames{
	Running:     []string{"vllm:num_requests_running", "ray_vllm:num_requests_running"},
	Waiting:     []string{"vllm:num_requests_waiting", "ray_vllm:num_requests_waiting"},
	KVCache:     []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "ray_vllm:kv_cache_usage_perc", "ray_vllm:gpu_cache_usage_perc"},
	ModelLabels: []string{"model_name"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses a vLLM /metrics exposition.
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("vllm: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
