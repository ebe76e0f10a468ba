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
