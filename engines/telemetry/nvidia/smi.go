package nvidia

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// DefaultFields is the field list QueryArgs asks for.
var DefaultFields = []string{"index", "name", "uuid", "utilization.gpu", "memory.used", "memory.total"}

// QueryArgs returns nvidia-smi arguments for DefaultFields in
// noheader,nounits form; parse the output with ParseSMI(r, DefaultFields).
func QueryArgs() []string {
	return []string{"--query-gpu=" + strings.Join(DefaultFields, ","), "--format=csv,noheader,nounits"}
}

// RunSMI runs nvidia-smi (found on PATH) with QueryArgs and parses it.
// ctx without a deadline gets 5 s.
func RunSMI(ctx context.Context) (telemetry.Report, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	out, err := exec.CommandContext(ctx, "nvidia-smi", QueryArgs()...).Output()
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("nvidia: run nvidia-smi: %w", err)
	}
	return ParseSMI(bytes.NewReader(out), DefaultFields)
}

// ParseSMI parses nvidia-smi --query-gpu CSV. fields is nil when the
// output has a header line (--format=csv), else the queried field names
// in order. Each row is one GPU. Recognised fields: index, name, uuid,
// utilization.gpu (percent), memory.used and memory.total (MiB). name is
// required; an unknown field is ignored.
func ParseSMI(r io.Reader, fields []string) (telemetry.Report, error) {
	data, err := telemetry.ReadAll(r, "nvidia: nvidia-smi csv")
	if err != nil {
		return telemetry.Report{}, err
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	line := 0
	next := func() ([]string, error) {
		rec, err := cr.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("nvidia: nvidia-smi csv: %w: line %d: %w", engines.ErrMalformed, pe.Line, pe.Err)
			}
			return nil, err
		}
		line, _ = cr.FieldPos(0)
		return rec, nil
	}
	header := fields
	if header == nil {
		h, err := next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: empty input", engines.ErrMalformed)
			}
			return telemetry.Report{}, err
		}
		header = make([]string, len(h))
		for i, f := range h {
			name, _, _ := strings.Cut(f, " [")
			header[i] = strings.TrimSpace(name)
		}
	}
	col := map[string]int{}
	for i, f := range header {
		col[strings.TrimSpace(f)] = i
	}
	if _, ok := col["name"]; !ok {
		if fields == nil {
			return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: line 1: header has no \"name\" field (for --format=csv,noheader pass the queried field list)", engines.ErrMalformed)
		}
		return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: field list has no \"name\"", engines.ErrMalformed)
	}
	rep := telemetry.Report{Vendor: "nvidia", Source: "nvidia-smi"}
	for {
		rec, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return telemetry.Report{}, err
		}
		if len(rec) != len(header) {
			return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: line %d: %d fields, header has %d", engines.ErrMalformed, line, len(rec), len(header))
		}
		c := telemetry.Card{Index: len(rep.Cards)}
		get := func(f string) (string, bool) {
			i, ok := col[f]
			if !ok {
				return "", false
			}
			v := strings.TrimSpace(rec[i])
			if v == "" || strings.HasPrefix(v, "[") {
				return "", false // [N/A], [Not Supported], ...
			}
			return v, true
		}
		num := func(f, unit string) (engines.Value, error) {
			v, ok := get(f)
			if !ok {
				return engines.Unknown, nil
			}
			// "csv" gives "37 %", "csv,nounits" gives "37" (its header
			// still says "[%]"): accept both.
			v = strings.TrimSuffix(v, " "+unit)
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 {
				return engines.Unknown, fmt.Errorf("nvidia: nvidia-smi csv: %w: line %d: field %s: bad number %q", engines.ErrMalformed, line, f, v)
			}
			return engines.Known(x), nil
		}
		name, ok := get("name")
		if !ok {
			return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: line %d: empty name", engines.ErrMalformed, line)
		}
		c.Model = name
		c.ID, _ = get("uuid")
		if v, ok := get("index"); ok {
			i, err := strconv.Atoi(v)
			if err != nil || i < 0 {
				return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w: line %d: field index: bad integer %q", engines.ErrMalformed, line, v)
			}
			c.Index = i
		}
		u, err := num("utilization.gpu", "%")
		if err != nil {
			return telemetry.Report{}, err
		}
		if x, ok := u.Get(); ok {
			if c.Utilization, err = telemetry.Percent(x, fmt.Sprintf("nvidia: nvidia-smi csv: line %d: utilization.gpu", line)); err != nil {
				return telemetry.Report{}, err
			}
		}
		for _, m := range []struct {
			f   string
			dst *engines.Value
		}{{"memory.used", &c.MemoryUsed}, {"memory.total", &c.MemoryTotal}} {
			v, err := num(m.f, "MiB")
			if err != nil {
				return telemetry.Report{}, err
			}
			if x, ok := v.Get(); ok {
				*m.dst = engines.Known(x * telemetry.MiB)
			}
		}
		if t, ok := c.MemoryTotal.Get(); ok && t == 0 {
			c.MemoryTotal, c.MemoryUsed = engines.Unknown, engines.Unknown
		}
		rep.Cards = append(rep.Cards, c)
	}
	if len(rep.Cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("nvidia: nvidia-smi csv: %w", telemetry.ErrNoDevices)
	}
	rep.Finish()
	return rep, nil
}
