package amd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// Args are the rocm-smi arguments RunSMI uses.
var Args = []string{"--showuse", "--showmeminfo", "vram", "--showproductname", "--json"}

// RunSMI runs rocm-smi (found on PATH) with Args and parses it. ctx
// without a deadline gets 10 s.
func RunSMI(ctx context.Context) (telemetry.Report, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	out, err := exec.CommandContext(ctx, "rocm-smi", Args...).Output()
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("amd: run rocm-smi: %w", err)
	}
	return ParseSMI(bytes.NewReader(out))
}

// ParseSMI parses rocm-smi --json output. Keys "cardN" are cards; other
// keys (e.g. "system") are ignored. Fields read (case-insensitive): "GPU
// use (%)", "VRAM Total Memory (B)", "VRAM Total Used Memory (B)", and
// the model from "Card Series" (else "Card SKU", "Card Model").
func ParseSMI(r io.Reader) (telemetry.Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, engines.MaxInput+1))
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("amd: rocm-smi: read: %w", err)
	}
	if len(data) > engines.MaxInput {
		return telemetry.Report{}, fmt.Errorf("amd: rocm-smi: %w", engines.ErrTooLarge)
	}
	// Skip leading non-JSON lines (WARNING: ..., blank lines).
	start := -1
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		line := data[off:]
		if end >= 0 {
			line = data[off : off+end]
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' {
			start = off
			break
		}
		if end < 0 {
			break
		}
		off += end + 1
	}
	if start < 0 {
		return telemetry.Report{}, fmt.Errorf("amd: rocm-smi: %w: no JSON object found", engines.ErrMalformed)
	}
	body := data[start:]
	var raw map[string]map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		line0 := bytes.Count(data[:start], []byte{'\n'})
		e := engines.JSONError(body, err)
		return telemetry.Report{}, fmt.Errorf("amd: rocm-smi: (JSON starts at line %d) %w", line0+1, e)
	}
	rep := telemetry.Report{Vendor: "amd", Source: "rocm-smi"}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if strings.HasPrefix(k, "card") {
			if _, err := strconv.Atoi(k[4:]); err == nil {
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(keys[i][4:])
		b, _ := strconv.Atoi(keys[j][4:])
		return a < b
	})
	for _, k := range keys {
		fields := map[string]string{}
		for fk, fv := range raw[k] {
			fields[strings.ToLower(fk)] = fmt.Sprint(fv)
		}
		idx, _ := strconv.Atoi(k[4:])
		c := telemetry.Card{Index: idx}
		for _, f := range []string{"card series", "card sku", "card model"} {
			if v := fields[f]; v != "" && v != "N/A" {
				c.Model = v
				break
			}
		}
		num := func(f string) (engines.Value, error) {
			v, ok := fields[f]
			if !ok || v == "N/A" || v == "" {
				return engines.Unknown, nil
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 {
				return engines.Unknown, fmt.Errorf("amd: rocm-smi: %w: %s.%q: bad number %q", engines.ErrMalformed, k, f, v)
			}
			return engines.Known(x), nil
		}
		u, err := num("gpu use (%)")
		if err != nil {
			return telemetry.Report{}, err
		}
		if x, ok := u.Get(); ok {
			if c.Utilization, err = telemetry.Percent(x, "amd: rocm-smi: "+k+".GPU use (%)"); err != nil {
				return telemetry.Report{}, err
			}
		}
		if c.MemoryTotal, err = num("vram total memory (b)"); err != nil {
			return telemetry.Report{}, err
		}
		if c.MemoryUsed, err = num("vram total used memory (b)"); err != nil {
			return telemetry.Report{}, err
		}
		if t, ok := c.MemoryTotal.Get(); ok && t == 0 {
			c.MemoryTotal, c.MemoryUsed = engines.Unknown, engines.Unknown
		}
		rep.Cards = append(rep.Cards, c)
	}
	if len(rep.Cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("amd: rocm-smi: %w: no \"cardN\" keys", telemetry.ErrNoDevices)
	}
	rep.Finish()
	return rep, nil
}
