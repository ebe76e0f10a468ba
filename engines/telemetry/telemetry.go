package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// ErrNoDevices means the input parsed but described no device.
var ErrNoDevices = errors.New("no devices")

// Card is one accelerator (a GPU, or one NPU chip/die).
type Card struct {
	// Index is the device index the tool uses (nvidia-smi index, NPU
	// logical chip, rocm card N).
	Index int `json:"index"`
	// Model is the vendor's name for the card, as reported.
	Model string `json:"model"`
	// ID is a stable identifier when the source gives one (UUID, bus id).
	ID string `json:"id,omitempty"`
	// Utilization is the compute busy fraction 0..1.
	Utilization engines.Value `json:"utilization"`
	// MemoryUsed and MemoryTotal are in bytes.
	MemoryUsed  engines.Value `json:"memory_used_bytes"`
	MemoryTotal engines.Value `json:"memory_total_bytes"`
}

// Report is what one telemetry source found on this node.
type Report struct {
	// Vendor is "nvidia", "ascend", "amd" or "cpu".
	Vendor string `json:"vendor"`
	// Source names the tool or file, e.g. "nvidia-smi", "dcgm".
	Source string `json:"source"`
	// Model is the cards' common model ("" if none, or the first seen
	// when mixed; see Mixed).
	Model string `json:"model"`
	// Mixed is true when cards report different models.
	Mixed bool `json:"mixed,omitempty"`
	// Count is the number of cards (or CPU cores, possibly fractional
	// under a cgroup quota, for vendor "cpu").
	Count float64 `json:"count"`
	Cards []Card  `json:"cards,omitempty"`
	// Utilization is the mean of the cards' known utilisations, or the
	// CPU utilisation; Unknown when no card reported one.
	Utilization engines.Value `json:"utilization"`
}

// Finish fills Model, Mixed, Count and Utilization from Cards.
func (r *Report) Finish() {
	r.Count = float64(len(r.Cards))
	r.Model, r.Mixed = "", false
	var sum float64
	var n int
	for _, c := range r.Cards {
		if r.Model == "" {
			r.Model = c.Model
		} else if c.Model != "" && c.Model != r.Model {
			r.Mixed = true
		}
		if u, ok := c.Utilization.Get(); ok {
			sum += u
			n++
		}
	}
	r.Utilization = engines.Unknown
	if n > 0 {
		r.Utilization = engines.Known(sum / float64(n))
	}
}

// ReadAll reads at most engines.MaxInput bytes and checks that text
// input is complete: non-empty and ending in a newline (a cut final line
// is how a truncated capture looks). what names the source in errors.
func ReadAll(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, engines.MaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", what, err)
	}
	if len(b) > engines.MaxInput {
		return nil, fmt.Errorf("%s: %w", what, engines.ErrTooLarge)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s: %w: empty input", what, engines.ErrMalformed)
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%s: %w: line %d: truncated (no final newline)", what, engines.ErrMalformed, bytes.Count(b, []byte{'\n'})+1)
	}
	return b, nil
}

// Percent converts a 0..100 value to a fraction, rejecting values out
// of range.
func Percent(v float64, what string) (engines.Value, error) {
	if v < 0 || v > 100.0001 {
		return engines.Unknown, fmt.Errorf("%s = %g: %w: percentage outside 0..100", what, v, engines.ErrMalformed)
	}
	return engines.Known(v / 100), nil
}

// MiB is 2^20 bytes; the tools' "MB" and "MiB" both mean this.
const MiB = 1 << 20
