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

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "triton"

func init() { engines.Register(adapter{}, "kserve") }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string       { return Name }
func (adapter) Spec() engines.Spec { return Spec }

// Spec describes Triton's HTTP/gRPC endpoints.
var Spec = engines.Spec{
	DefaultPort: 8000,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "/v2/models/{name}/infer", Model: engines.ModelInPath, Stream: engines.StreamNone},
		{Method: "POST", Path: "/v2/models/{name}/generate_stream", Model: engines.ModelInPath, Stream: engines.StreamSSENoDone},
		{Method: "GRPC", Path: "/inference.GRPCInferenceService/ModelInfer", Model: engines.ModelInGRPCField, Stream: engines.StreamNone},
		{Method: "GRPC", Path: "/inference.GRPCInferenceService/ModelStreamInfer", Model: engines.ModelInGRPCField, Stream: engines.StreamGRPC},
	},
	MetricsPath: "/metrics",
	MetricsPort: 8002,
	LivePath:    "/v2/health/live",
	ReadyPath:   "/v2/health/ready",
}

// Names lists the metric families read.
var Names = engines.LoadNames{
	Waiting:     []string{"nv_inference_pending_request_count"},
	ModelLabels: []string{"model"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses a Triton /metrics exposition.
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("triton: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
