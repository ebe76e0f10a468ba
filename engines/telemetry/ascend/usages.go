package ascend

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// ParseUsages parses `npu-smi info -t usages -i ID` ("Key : value"
// lines). It needs "Aicore Usage Rate(%)" and gives memory from HBM
// (or DDR when HBM capacity is 0): used = capacity × usage rate. The
// output does not name the chip model, so Model is "".
func ParseUsages(r io.Reader) (telemetry.Report, error) {
	data, err := telemetry.ReadAll(r, "ascend: npu-smi usages")
	if err != nil {
		return telemetry.Report{}, err
	}
	kv := map[string]float64{}
	lines := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // blank lines and decoration
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return telemetry.Report{}, fmt.Errorf("ascend: npu-smi usages: %w: line %d: empty key", engines.ErrMalformed, line)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			if v == "NA" || v == "-" {
				continue
			}
			return telemetry.Report{}, fmt.Errorf("ascend: npu-smi usages: %w: line %d: %s: %q is not a number", engines.ErrMalformed, line, k, v)
		}
		kv[k], lines[k] = x, line
	}
	aicore, ok := kv["Aicore Usage Rate(%)"]
	if !ok {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi usages: %w: no \"Aicore Usage Rate(%%)\" line", engines.ErrMalformed)
	}
	c := telemetry.Card{Index: int(kv["NPU ID"])}
	if id, ok := kv["Chip ID"]; ok {
		c.ID = fmt.Sprintf("npu%d-chip%d", c.Index, int(id))
	}
	c.Utilization, err = telemetry.Percent(aicore, fmt.Sprintf("ascend: npu-smi usages: line %d: Aicore Usage Rate(%%)", lines["Aicore Usage Rate(%)"]))
	if err != nil {
		return telemetry.Report{}, err
	}
	for _, m := range []string{"HBM", "DDR"} {
		capMB, ok1 := kv[m+" Capacity(MB)"]
		rate, ok2 := kv[m+" Usage Rate(%)"]
		if !ok1 || !ok2 || capMB <= 0 {
			continue
		}
		f, err := telemetry.Percent(rate, fmt.Sprintf("ascend: npu-smi usages: line %d: %s Usage Rate(%%)", lines[m+" Usage Rate(%)"], m))
		if err != nil {
			return telemetry.Report{}, err
		}
		c.MemoryTotal = engines.Known(capMB * telemetry.MiB)
		c.MemoryUsed = engines.Known(capMB * telemetry.MiB * f.Or(0))
		break
	}
	rep := telemetry.Report{Vendor: "ascend", Source: "npu-smi-usages", Cards: []telemetry.Card{c}}
	rep.Finish()
	return rep, nil
}
