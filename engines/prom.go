package engines

import (
	"bytes"
	"fmt"
	"io"
	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one parsed Prometheus text exposition, keyed by family name.
// It is read-only after ParseMetrics returns.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses Prometheus text format (0.0.4) with expfmt. Names
// with ':' (vllm:, sglang:, ray_vllm:) are valid under both validation
// schemes; we use UTF8Validation so that any quoted UTF-8 names the newer
// text format allows also parse. Trailing millisecond timestamps, HELP
// and TYPE lines and blank lines are accepted. Errors wrap ErrMalformed
// and carry expfmt's line number.
func ParseMetrics(r io.Reader) (Metrics, error) {
	lr := &io.LimitedReader{R: r, N: MaxInput + 1}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(lr); err != nil {
		return nil, fmt.Errorf("engines: read metrics: %w", err)
	}
	if buf.Len() > MaxInput {
		return nil, fmt.Errorf("engines: metrics: %w (over %d bytes)", ErrTooLarge, MaxInput)
	}
	b := buf.Bytes()
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("engines: metrics: %w: empty input", ErrMalformed)
	}
	// A final line without its newline is how a truncated scrape looks;
	// expfmt would accept "name 1" cut from "name 12", so refuse it.
	if b[len(b)-1] != '\n' {
		line := bytes.Count(b, []byte{'\n'}) + 1
		return nil, fmt.Errorf("engines: metrics: %w: line %d: truncated (no final newline)", ErrMalformed, line)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("engines: metrics: %w: %w", ErrMalformed, err)
	}
	return Metrics(fams), nil
}

// Sample is one series' value and labels.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Has reports whether the family exists with at least one sample.
func (m Metrics) Has(name string) bool {
	f := m[name]
	return f != nil && len(f.GetMetric()) > 0
}

// Samples returns the family's gauge/counter/untyped samples; NaN values
// are skipped. Histograms and summaries give nothing.
func (m Metrics) Samples(name string) []Sample {
	f := m[name]
	if f == nil {
		return nil
	}
	out := make([]Sample, 0, len(f.GetMetric()))
	for _, mt := range f.GetMetric() {
		v, ok := scalar(mt)
		if !ok || math.IsNaN(v) {
			continue
		}
		lb := make(map[string]string, len(mt.GetLabel()))
		for _, l := range mt.GetLabel() {
			lb[l.GetName()] = l.GetValue()
		}
		out = append(out, Sample{Labels: lb, Value: v})
	}
	return out
}

func scalar(mt *dto.Metric) (float64, bool) {
	switch {
	case mt.Gauge != nil:
		return mt.Gauge.GetValue(), true
	case mt.Counter != nil:
		return mt.Counter.GetValue(), true
	case mt.Untyped != nil:
		return mt.Untyped.GetValue(), true
	}
	return 0, false
}

// First returns the first family name in names that is present.
func (m Metrics) First(names ...string) (string, bool) {
	for _, n := range names {
		if m.Has(n) {
			return n, true
		}
	}
	return "", false
}
