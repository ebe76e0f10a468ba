package mindie

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "mindie"

func init() { engines.Register(adapter{}) }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string       { return Name }
func (adapter) Spec() engines.Spec { return Spec }

// Spec describes MindIE Server.
var Spec = engines.Spec{
	DefaultPort: 1025,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "/v1/chat/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/v1/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/generate_stream", Model: engines.ModelInServer, Stream: engines.StreamSSENoDone},
		{Method: "POST", Path: "/v2/models/{name}/infer", Model: engines.ModelInPath, Stream: engines.StreamNone},
	},
	MetricsPath:    "/metrics",
	MetricsPort:    1027,
	LivePath:       "/v2/health/live",
	ReadyPath:      "/v2/health/ready",
	BusyOnReady503: true,
	Notes:          "live/ready are on the management port (1026 by default)",
}

// Names lists the metric families read.
var Names = engines.LoadNames{
	Running:     []string{"num_requests_running"},
	Waiting:     []string{"num_requests_waiting"},
	KVCache:     []string{"npu_cache_usage_perc"},
	ModelLabels: []string{"model_name"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses a MindIE /metrics exposition.
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("mindie: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
