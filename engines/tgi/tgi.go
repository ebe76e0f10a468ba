package tgi

import (
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "tgi"

func init() { engines.Register(adapter{}) }

type adapter struct{}

var _ engines.Adapter = adapter{}

func (adapter) Name() string       { return Name }
func (adapter) Spec() engines.Spec { return Spec }

// Spec describes TGI.
var Spec = engines.Spec{
	DefaultPort: 80,
	Endpoints: []engines.Endpoint{
		{Method: "POST", Path: "/generate", Model: engines.ModelInServer, Stream: engines.StreamNone},
		{Method: "POST", Path: "/generate_stream", Model: engines.ModelInServer, Stream: engines.StreamSSENoDone},
		{Method: "POST", Path: "/v1/chat/completions", Model: engines.ModelInServer, Stream: engines.StreamSSE},
		{Method: "GET", Path: "/info", Stream: engines.StreamNone},
	},
	MetricsPath: "/metrics",
	LivePath:    "/health",
	ReadyPath:   "/health",
}

// Names lists the metric families read.
var Names = engines.LoadNames{
	Running: []string{"tgi_batch_current_size"},
	Waiting: []string{"tgi_queue_size"},
}

func (adapter) ParseLoad(r io.Reader) (engines.Load, error) { return ParseLoad(r) }

// ParseLoad parses a TGI /metrics exposition.
func ParseLoad(r io.Reader) (engines.Load, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return engines.Load{}, fmt.Errorf("tgi: %w", err)
	}
	return engines.LoadFromMetrics(Name, m, Names)
}
