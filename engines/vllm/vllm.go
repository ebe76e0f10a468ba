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
