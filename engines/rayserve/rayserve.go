package rayserve

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "rayserve"

func init() { engines.Register(adapter{}, "ray-serve", "ray_serve") }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string       { return Name }
func (adapter) Spec() engines.Spec { return Spec }

// Spec describes the Ray Serve proxies.
var Spec = engines.Spec{
	DefaultPort: 8000,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "{route_prefix}/...", Model: engines.ModelInRoute, Stream: engines.StreamSSE},
		{Method: "GRPC", Path: "/{service}/{method} (metadata application=NAME)", Model: engines.ModelInRoute, Stream: engines.StreamGRPC},
	},
	MetricsPath: "/metrics",
	MetricsPort: 8080,
	LivePath:    "/-/healthz",
	ReadyPath:   "/-/healthz",
	Notes:       "discovery: dashboard GET /api/serve/applications/ on :8265",
}

// Names lists the metric families read.
var Names = engines.LoadNames{
	Running:     []string{"ray_serve_replica_processing_queries"},
	Waiting:     []string{"ray_serve_deployment_queued_queries"},
	ModelLabels: []string{"application"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses a Ray metrics-export-port exposition.
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("rayserve: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
