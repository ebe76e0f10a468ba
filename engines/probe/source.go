package probe

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

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

var telemetryKinds = map[string]func(io.Reader, SourceOptions) (telemetry.Report, error){
	"nvidia-smi":     func(r io.Reader, o SourceOptions) (telemetry.Report, error) { return nvidia.ParseSMI(r, o.Fields) },
	"dcgm":           func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return nvidia.ParseDCGM(r) },
	"npu-smi":        func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseInfo(r) },
	"npu-smi-usages": func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseUsages(r) },
	"npu-exporter":   func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return ascend.ParseExporter(r) },
	"rocm-smi":       func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return amd.ParseSMI(r) },
	"amd-smi":        func(r io.Reader, _ SourceOptions) (telemetry.Report, error) { return amd.ParseAMDSMI(r) },
}

// loadsSuffix names the kind of a dialect's JSON load endpoint answer:
// "sglang-loads" for SGLang's GET /v1/loads.
const loadsSuffix = "-loads"

// Kinds lists the kinds ParseSource accepts, sorted: every engine
// dialect by name (aliases are accepted too), "<engine>-loads" for a
// dialect with a JSON load endpoint, "rayserve-apps" and the telemetry
// kinds.
func Kinds() []string {
	out := []string{"rayserve-apps"}
	for _, d := range engines.Dialects() {
		out = append(out, d.Name)
		if d.Fallback != nil {
			out = append(out, d.Name+loadsSuffix)
		}
	}
	for k := range telemetryKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseSource parses one saved output of the given kind into a Report:
// engine kinds (any dialect name or alias: vllm — which also reads Ray's
// ray_vllm names —, sglang, tgi, triton, mindie, rayserve, trtllm-serve)
// read a metrics exposition into Engine.Load; "<engine>-loads" (e.g.
// sglang-loads) reads that engine's JSON load endpoint answer;
// "rayserve-apps" (the dashboard's /api/serve/applications/ JSON) fills
// Engine.Ray; telemetry kinds (nvidia-smi, dcgm, npu-smi,
// npu-smi-usages, npu-exporter, rocm-smi, amd-smi) fill Accelerators and
// Capacity. A parse error is returned as is (it names the line and the
// problem); an unknown kind wraps ErrUnknownKind.
func ParseSource(kind string, r io.Reader, o SourceOptions) (Report, error) {
	var rep Report
	if telemetryKinds[kind] != nil {
		t, err := telemetryKinds[kind](r, o)
		if err != nil {
			return Report{}, err
		}
		rep.Accelerators = append(rep.Accelerators, t)
		finish(&rep, o.Capacity)
		return rep, nil
	}
	switch {
	case kind == "rayserve-apps":
		c, err := rayserve.ParseApplications(r)
		if err != nil {
			return Report{}, err
		}
		rep.Engine = &EngineReport{Name: rayserve.Name, Ray: &RayServeReport{Cluster: c, Routes: c.Routes()}}
	case strings.HasSuffix(kind, loadsSuffix) && fallbackDialect(strings.TrimSuffix(kind, loadsSuffix)) != nil:
		d := fallbackDialect(strings.TrimSuffix(kind, loadsSuffix))
		l, err := d.ParseFallback(r)
		if err != nil {
			return Report{}, err
		}
		rep.Engine = &EngineReport{Name: d.Name, Load: &l}
	default:
		if err := CheckKind(kind); err != nil {
			return Report{}, err
		}
		d, err := engines.LookupDialect(kind)
		if err != nil {
			return Report{}, err
		}
		l, err := d.ParseLoad(r)
		if err != nil {
			return Report{}, err
		}
		rep.Engine = &EngineReport{Name: d.Name, Load: &l}
	}
	finish(&rep, o.Capacity)
	return rep, nil
}

// CheckKind reports whether ParseSource accepts kind; the error wraps
// ErrUnknownKind and lists the known kinds.
func CheckKind(kind string) error {
	switch {
	case telemetryKinds[kind] != nil, kind == "rayserve-apps":
		return nil
	case strings.HasSuffix(kind, loadsSuffix) && fallbackDialect(strings.TrimSuffix(kind, loadsSuffix)) != nil:
		return nil
	}
	if _, err := engines.LookupDialect(kind); err == nil {
		return nil
	}
	return fmt.Errorf("%w %q (known: %v)", ErrUnknownKind, kind, Kinds())
}

func fallbackDialect(name string) *engines.Dialect {
	d, err := engines.LookupDialect(name)
	if err != nil || d.Fallback == nil {
		return nil
	}
	return d
}
