package ascend

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// RunInfo runs `npu-smi info` (found on PATH) and parses it. ctx without
// a deadline gets 10 s (npu-smi is slow on big machines).
func RunInfo(ctx context.Context) (telemetry.Report, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	out, err := exec.CommandContext(ctx, "npu-smi", "info").Output()
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("ascend: run npu-smi info: %w", err)
	}
	return ParseInfo(bytes.NewReader(out))
}

// cells splits "| a | b |" into trimmed cells; ok is false for lines that
// are not table rows.
func cells(line string) ([]string, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
		return nil, false
	}
	parts := strings.Split(line[1:len(line)-1], "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, true
}

// tokens splits a cell on whitespace and joins "a / b", "a/ b", "a /b"
// into one "a/b" token.
func tokens(cell string) []string {
	raw := strings.Fields(cell)
	out := make([]string, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		t := raw[i]
		switch {
		case t == "/" && len(out) > 0 && i+1 < len(raw):
			out[len(out)-1] += "/" + raw[i+1]
			i++
		case strings.HasSuffix(t, "/") && i+1 < len(raw):
			out = append(out, t+raw[i+1])
			i++
		case strings.HasPrefix(t, "/") && len(out) > 0:
			out[len(out)-1] += t
		default:
			out = append(out, t)
		}
	}
	return out
}

// header is one header row: per cell, the column names.
type header [][]string

func parseHeader(cs []string) header {
	h := make(header, len(cs))
	for i, c := range cs {
		f := strings.Fields(c)
		// npu-smi 25.x/26.x on Ascend 950 names two columns with two
		// words: "NPU ID" and "NPU Util(%)". Join them into one name.
		for j := 0; j < len(f); j++ {
			if f[j] == "NPU" && j+1 < len(f) && (f[j+1] == "ID" || strings.HasPrefix(f[j+1], "Util")) {
				h[i] = append(h[i], f[j]+"-"+f[j+1])
				j++
				continue
			}
			h[i] = append(h[i], f[j])
		}
	}
	return h
}

// has reports whether any cell of the header has the column name.
func (h header) has(name string) bool {
	for _, c := range h {
		for _, n := range c {
			if n == name {
				return true
			}
		}
	}
	return false
}

// match maps a data row to column name → value using h. The cell and
// token counts must agree.
func (h header) match(cs []string, line int) (map[string]string, error) {
	if len(cs) != len(h) {
		return nil, fmt.Errorf("ascend: npu-smi info: %w: line %d: %d cells, header has %d", engines.ErrMalformed, line, len(cs), len(h))
	}
	out := map[string]string{}
	for i, c := range cs {
		tk := tokens(c)
		if len(tk) != len(h[i]) {
			return nil, fmt.Errorf("ascend: npu-smi info: %w: line %d: cell %d has %d values %q, header %v", engines.ErrMalformed, line, i+1, len(tk), tk, h[i])
		}
		for j, name := range h[i] {
			out[name] = tk[j]
		}
	}
	return out, nil
}

// ParseInfo parses the `npu-smi info` table. The output must be whole:
// banner, device table, then the process table's header (a capture cut
// anywhere before it is ErrMalformed, "truncated"), the last line a rule.
func ParseInfo(r io.Reader) (telemetry.Report, error) {
	data, err := telemetry.ReadAll(r, "ascend: npu-smi info")
	if err != nil {
		return telemetry.Report{}, err
	}
	var h1, h2 header
	var first map[string]string // the pending NPU row
	processes := false          // the process table's header was seen
	firstLine := 0
	rep := telemetry.Report{Vendor: "ascend", Source: "npu-smi"}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		cs, ok := cells(sc.Text())
		if !ok {
			continue
		}
		hd := parseHeader(cs)
		switch {
		case strings.Contains(sc.Text(), "Process id") || strings.Contains(sc.Text(), "Process name"):
			// The process table follows; device rows are done.
			processes = true
			goto done
		case len(hd[0]) > 0 && strings.HasPrefix(hd[0][0], "NPU") && hd.has("Health"):
			// "| NPU   Name | Health |" (910, 310P, A3) or
			// "| NPU ID | Name | Health |" (Ascend 950).
			h1, h2, first = hd, nil, nil
			continue
		case h1 != nil && hd.has("Bus-Id"):
			// "| Chip  Phy-ID | Bus-Id |" or, on Ascend 950, a
			// continuation header whose first cells are empty.
			h2 = hd
			continue
		case len(hd[0]) > 0 && strings.HasPrefix(hd[0][0], "npu-smi"):
			continue // version banner
		case allEmpty(cs):
			continue
		}
		if h1 == nil || h2 == nil {
			if lead := strings.Fields(cs[0]); len(lead) > 0 {
				if _, err := strconv.Atoi(lead[0]); err == nil {
					return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w: line %d: device row before the column header", engines.ErrMalformed, line)
				}
			}
			continue
		}
		if first == nil {
			m, err := h1.match(cs, line)
			if err != nil {
				return telemetry.Report{}, err
			}
			first, firstLine = m, line
			continue
		}
		second, err := h2.match(cs, line)
		if err != nil {
			return telemetry.Report{}, err
		}
		c, err := card(first, second, firstLine, line)
		if err != nil {
			return telemetry.Report{}, err
		}
		c.Index = len(rep.Cards)
		rep.Cards = append(rep.Cards, c)
		first = nil
	}
done:
	if h1 == nil {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w: no \"NPU Name\" header row", engines.ErrMalformed)
	}
	// npu-smi closes every block with a +---+ or +===+ rule; a capture
	// whose last line is anything else was cut.
	if last := lastLine(data); !strings.HasPrefix(last, "+") {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w: line %d: truncated (table not closed by a +---+ rule)", engines.ErrMalformed, bytes.Count(data, []byte{'\n'}))
	}
	if first != nil {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w: line %d: NPU row without its Chip row (truncated?)", engines.ErrMalformed, firstLine)
	}
	// Every row of the device table ends with a rule, so a capture cut
	// after one looks closed: only the process table that follows the
	// device table (npu-smi prints it even with no process, one "No
	// running processes found in NPU n" row per NPU) says the device
	// table is whole.
	if !processes {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w: line %d: truncated (no process table after the devices: a whole npu-smi info output ends with one)", engines.ErrMalformed, bytes.Count(data, []byte{'\n'}))
	}
	if len(rep.Cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-smi info: %w", telemetry.ErrNoDevices)
	}
	rep.Finish()
	return rep, nil
}

func card(a, b map[string]string, la, lb int) (telemetry.Card, error) {
	var c telemetry.Card
	c.Model = a["Name"]
	if c.Model == "" {
		return c, fmt.Errorf("ascend: npu-smi info: %w: line %d: no Name column", engines.ErrMalformed, la)
	}
	if id := b["Bus-Id"]; id != "NA" && id != "-" {
		c.ID = id
	}
	// AICore(%) up to the A3 layout; "NPU Util(%)" on Ascend 950.
	for _, col := range []string{"AICore(%)", "NPU-Util(%)"} {
		v, ok := b[col]
		if !ok || v == "-" || v == "NA" {
			continue
		}
		name := strings.Replace(col, "-", " ", 1)
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("ascend: npu-smi info: %w: line %d: %s %q is not a number", engines.ErrMalformed, lb, name, v)
		}
		if c.Utilization, err = telemetry.Percent(x, fmt.Sprintf("ascend: npu-smi info: line %d: %s", lb, name)); err != nil {
			return c, err
		}
		break
	}
	// HBM on 910-class chips, DDR ("Memory-Usage") on 310P and as the
	// fallback when HBM shows 0 total.
	for _, col := range []string{"HBM-Usage(MB)", "Memory-Usage(MB)"} {
		v, ok := b[col]
		if !ok {
			continue
		}
		used, total, err := pair(v)
		if err != nil {
			return c, fmt.Errorf("ascend: npu-smi info: %w: line %d: %s %q: %w", engines.ErrMalformed, lb, col, v, err)
		}
		if total > 0 {
			c.MemoryUsed = engines.Known(used * telemetry.MiB)
			c.MemoryTotal = engines.Known(total * telemetry.MiB)
			break
		}
	}
	return c, nil
}

// pair parses "used/total".
func pair(v string) (used, total float64, err error) {
	u, t, ok := strings.Cut(v, "/")
	if !ok {
		return 0, 0, fmt.Errorf("want used/total")
	}
	if used, err = strconv.ParseFloat(u, 64); err != nil {
		return 0, 0, fmt.Errorf("used: %w", err)
	}
	if total, err = strconv.ParseFloat(t, 64); err != nil {
		return 0, 0, fmt.Errorf("total: %w", err)
	}
	if used < 0 || total < 0 || used > total {
		return 0, 0, fmt.Errorf("used %g / total %g out of range", used, total)
	}
	return used, total, nil
}

func allEmpty(cs []string) bool {
	for _, c := range cs {
		if c != "" {
			return false
		}
	}
	return true
}

func lastLine(data []byte) string {
	t := bytes.TrimRight(data, " \t\r\n")
	if i := bytes.LastIndexByte(t, '\n'); i >= 0 {
		t = t[i+1:]
	}
	return strings.TrimSpace(string(t))
}
