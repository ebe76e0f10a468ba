package sglang

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "sglang"

func init() { engines.Register(adapter{}) }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string       { return Name }
func (adapter) Spec() engines.Spec { return Spec }

// Spec describes the SGLang server.
var Spec = engines.Spec{
	DefaultPort: 30000,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "/generate", Model: engines.ModelInServer, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/v1/chat/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "POST", Path: "/v1/completions", Model: engines.ModelInBody, Stream: engines.StreamSSE},
		{Method: "GET", Path: "/v1/models", Stream: engines.StreamNone},
	},
	MetricsPath: "/metrics",
	LivePath:    "/health",
	ReadyPath:   "/health",
	Notes:       "GET /health_generate runs a one-token generation: a stronger but slower readiness check",
}

// Names lists the metric families read.
var Names = engines.LoadNames{
	Running:     []string{"sglang:num_running_reqs"},
	Waiting:     []string{"sglang:num_queue_reqs"},
	KVCache:     []string{"sglang:token_usage"},
	ModelLabels: []string{"model_name"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses an SGLang /metrics exposition. Series of several
// tp/dp ranks are summed (running, queued) or maxed (token usage).
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("sglang: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
