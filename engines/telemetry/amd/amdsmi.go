package amd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// AMDSMIArgs are the amd-smi arguments RunAMDSMI uses for the load;
// AMDSMIStaticArgs those for the card names.
var (
	AMDSMIArgs       = []string{"metric", "--usage", "--mem-usage", "--json"}
	AMDSMIStaticArgs = []string{"static", "--asic", "--json"}
)

// RunAMDSMI runs `amd-smi metric` (found on PATH) and parses it, then
// `amd-smi static --asic` for the card names (amd-smi metric does not
// print them; without them the capacity table cannot match the card). A
// failing static call leaves the names empty. ctx without a deadline
// gets 10 s.
func RunAMDSMI(ctx context.Context) (telemetry.Report, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	out, err := exec.CommandContext(ctx, "amd-smi", AMDSMIArgs...).Output()
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("amd: run amd-smi metric: %w", err)
	}
	rep, err := ParseAMDSMI(bytes.NewReader(out))
	if err != nil {
		return telemetry.Report{}, err
	}
	if st, err := exec.CommandContext(ctx, "amd-smi", AMDSMIStaticArgs...).Output(); err == nil {
		if names, err := ParseAMDSMINames(bytes.NewReader(st)); err == nil {
			for i := range rep.Cards {
				if n := names[rep.Cards[i].Index]; n != "" && rep.Cards[i].Model == "" {
					rep.Cards[i].Model = n
				}
			}
			rep.Finish()
		}
	}
	return rep, nil
}

// ParseAMDSMI parses `amd-smi metric --json` in both shapes seen in the
// wild: a plain array of per-GPU objects (ROCm 6.x releases) and
// {"gpu_data": [...]} (newer ones). Per GPU: the index from "gpu",
// utilisation from usage.gfx_activity (percent), memory from
// mem_usage.used_vram and total_vram, each either a number or a
// {"value": N, "unit": "MB"} object; "N/A" or a missing block is
// Unknown. The card name comes from asic.market_name when the document
// has it (amd-smi static does; metric does not). Leading non-JSON lines
// (warnings) are skipped.
func ParseAMDSMI(r io.Reader) (telemetry.Report, error) {
	items, err := amdsmiItems(r, "amd-smi metric")
	if err != nil {
		return telemetry.Report{}, err
	}
	rep := telemetry.Report{Vendor: "amd", Source: "amd-smi"}
	for i, it := range items {
		where := fmt.Sprintf("gpu_data[%d]", i)
		c := telemetry.Card{Index: i, Model: marketName(it)}
		if idx, ok, err := number(it["gpu"], where+".gpu"); err != nil {
			return telemetry.Report{}, err
		} else if ok {
			c.Index = int(idx)
		}
		if u, ok, err := field(it, "usage", "gfx_activity", where); err != nil {
			return telemetry.Report{}, err
		} else if ok {
			if c.Utilization, err = telemetry.Percent(u.v, "amd: amd-smi metric: "+where+".usage.gfx_activity"); err != nil {
				return telemetry.Report{}, err
			}
		}
		for _, m := range []struct {
			key string
			dst *engines.Value
		}{{"used_vram", &c.MemoryUsed}, {"total_vram", &c.MemoryTotal}} {
			q, ok, err := field(it, "mem_usage", m.key, where)
			if err != nil {
				return telemetry.Report{}, err
			}
			if !ok {
				continue
			}
			scale, known := unitBytes[strings.ToUpper(q.unit)]
			if !known || q.v < 0 {
				return telemetry.Report{}, fmt.Errorf("amd: amd-smi metric: %w: %s.mem_usage.%s: %g %q is not a memory size", engines.ErrMalformed, where, m.key, q.v, q.unit)
			}
			*m.dst = engines.Known(q.v * scale)
		}
		if t, ok := c.MemoryTotal.Get(); ok && t == 0 {
			c.MemoryTotal, c.MemoryUsed = engines.Unknown, engines.Unknown
		}
		rep.Cards = append(rep.Cards, c)
	}
	if len(rep.Cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("amd: amd-smi metric: %w", telemetry.ErrNoDevices)
	}
	sort.SliceStable(rep.Cards, func(i, j int) bool { return rep.Cards[i].Index < rep.Cards[j].Index })
	rep.Finish()
	return rep, nil
}

// ParseAMDSMINames reads `amd-smi static --asic --json` (either shape)
// into GPU index → asic.market_name.
func ParseAMDSMINames(r io.Reader) (map[int]string, error) {
	items, err := amdsmiItems(r, "amd-smi static")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for i, it := range items {
		idx := i
		if v, ok, err := number(it["gpu"], fmt.Sprintf("gpu_data[%d].gpu", i)); err != nil {
			return nil, err
		} else if ok {
			idx = int(v)
		}
		out[idx] = marketName(it)
	}
	return out, nil
}

// unitBytes maps amd-smi memory units to bytes; its "MB" are MiB
// (total_vram 16368 MB on a 16 GiB card).
var unitBytes = map[string]float64{"": telemetry.MiB, "B": 1, "KB": 1 << 10, "MB": telemetry.MiB, "GB": 1 << 30}

// amdsmiItems finds the JSON document and returns its per-GPU objects.
func amdsmiItems(r io.Reader, what string) ([]map[string]any, error) {
	data, err := io.ReadAll(io.LimitReader(r, engines.MaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("amd: %s: read: %w", what, err)
	}
	if len(data) > engines.MaxInput {
		return nil, fmt.Errorf("amd: %s: %w", what, engines.ErrTooLarge)
	}
	start := -1
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		line := data[off:]
		if end >= 0 {
			line = data[off : off+end]
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			start = off
			break
		}
		if end < 0 {
			break
		}
		off += end + 1
	}
	if start < 0 {
		return nil, fmt.Errorf("amd: %s: %w: no JSON document found", what, engines.ErrMalformed)
	}
	body := data[start:]
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("amd: %s: (JSON starts at line %d) %w", what, bytes.Count(data[:start], []byte{'\n'})+1, engines.JSONError(body, err))
	}
	var rest any
	if err := dec.Decode(&rest); err != io.EOF {
		return nil, fmt.Errorf("amd: %s: %w: data after the JSON document", what, engines.ErrMalformed)
	}
	var list []any
	switch d := doc.(type) {
	case []any:
		list = d
	case map[string]any:
		l, ok := d["gpu_data"].([]any)
		if !ok {
			return nil, fmt.Errorf("amd: %s: %w: an object without a \"gpu_data\" array", what, engines.ErrMalformed)
		}
		list = l
	default:
		return nil, fmt.Errorf("amd: %s: %w: want an array or {\"gpu_data\": [...]}", what, engines.ErrMalformed)
	}
	out := make([]map[string]any, 0, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("amd: %s: %w: gpu_data[%d]: want an object", what, engines.ErrMalformed, i)
		}
		out = append(out, m)
	}
	return out, nil
}

func marketName(it map[string]any) string {
	if a, ok := it["asic"].(map[string]any); ok {
		if s, ok := a["market_name"].(string); ok && s != "N/A" {
			return s
		}
	}
	return ""
}

// quantity is a value with its unit.
type quantity struct {
	v    float64
	unit string
}

// field reads it[block][key] as a number or {"value": N, "unit": U};
// "N/A" (for the block or the key) or absence is not ok.
func field(it map[string]any, block, key, where string) (quantity, bool, error) {
	b, ok := it[block].(map[string]any)
	if !ok {
		return quantity{}, false, nil // absent, or "N/A"
	}
	x := b[key]
	path := where + "." + block + "." + key
	unit := ""
	if m, ok := x.(map[string]any); ok {
		unit, _ = m["unit"].(string)
		x = m["value"]
	}
	v, ok, err := number(x, path)
	return quantity{v: v, unit: unit}, ok, err
}

// number reads a JSON number; nil or "N/A" is not ok; anything else is
// an error naming path.
func number(x any, path string) (float64, bool, error) {
	switch v := x.(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return 0, false, fmt.Errorf("amd: amd-smi: %w: %s: bad number %s", engines.ErrMalformed, path, v)
		}
		return f, true, nil
	case string:
		if v == "N/A" || v == "" {
			return 0, false, nil
		}
	}
	return 0, false, fmt.Errorf("amd: amd-smi: %w: %s: want a number, got %v", engines.ErrMalformed, path, x)
}
