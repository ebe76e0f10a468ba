package probe

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/capacity"
	"github.com/switchyard-dev/switchyard/engines/rayserve"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
	"github.com/switchyard-dev/switchyard/engines/telemetry/amd"
	"github.com/switchyard-dev/switchyard/engines/telemetry/ascend"
	"github.com/switchyard-dev/switchyard/engines/telemetry/nvidia"
)

// ErrUnknownKind is returned by ParseSource for a kind it does not know.
var ErrUnknownKind = errors.New("probe: unknown source kind")

// SourceOptions tune ParseSource.
type SourceOptions struct {
	// Fields is the nvidia-smi field list for noheader CSV (nil: the file
	// has a header line).
	Fields []string
	// Capacity is the coefficient table (nil: capacity.Default()).
	Capacity *capacity.Table
}

var engineKinds = map[string]string{
	"vllm": "vllm", "sglang": "sglang", "tgi": "tgi", "triton": "triton", "mindie": "mindie", "rayserve": "rayserve",
}

var telemetryKinds = map[string]func(io.Reader, SourceOptions) (telemetry.Report, error){
	"nvidia-smi":     func(r io.Reader, o SourceOptions) (telemetry.Report, error) { return nvidia.ParseSMI(r, o.Fields) },
	"dcgm":           func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return nvidia.ParseDCGM(r) },
	"npu-smi":        func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseInfo(r) },
	"npu-smi-usages": func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseUsages(r) },
	"npu-exporter":   func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseExporter(r) },
	"rocm-smi":       func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return amd.ParseSMI(r) },
}

// Kinds lists the kinds ParseSource accepts, sorted.
func Kinds() []string {
	out := []string{"rayserve-apps"}
	for k := range engineKinds {
		out = append(out, k)
	}
	for k := range telemetryKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseSource parses one saved output of the given kind into a Report:
// engine kinds (vllm — which also reads ray_vllm: —, sglang, tgi, triton,
// mindie, rayserve) fill Engine; "rayserve-apps" (the dashboard's
// /api/serve/applications/ JSON) fills Engine.Ray; telemetry kinds
// (nvidia-smi, dcgm, npu-smi, npu-smi-usages, npu-exporter, rocm-smi)
// fill Accelerators and Capacity. A parse error is returned as is (it
// names the line and the problem).
func ParseSource(kind string, r io.Reader, o SourceOptions) (Report, error) {
	var rep Report
	switch {
	case kind == "rayserve-apps":
		c, err := rayserve.ParseApplications(r)
		if err != nil {
			return Report{}, err
		}
		rep.Engine = &EngineReport{Name: rayserve.Name, Ray: &RayServeReport{Cluster: c, Routes: c.Routes()}}
	case engineKinds[kind] != "":
		a, err := engines.Lookup(engineKinds[kind])
		if err != nil {
			return Report{}, err
		}
		l, err := a.ParseLoad(r)
		if err != nil {
			return Report{}, err
		}
		rep.Engine = &EngineReport{Name: a.Name(), Load: &l}
	case telemetryKinds[kind] != nil:
		t, err := telemetryKinds[kind](r, o)
		if err != nil {
			return Report{}, err
		}
		rep.Accelerators = append(rep.Accelerators, t)
	default:
		return Report{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownKind, kind, Kinds())
	}
	finish(&rep, o.Capacity)
	return rep, nil
}
