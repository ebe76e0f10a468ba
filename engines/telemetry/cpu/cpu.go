package cpu

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// Stat is one /proc/stat sample: the aggregate "cpu" line's jiffies.
type Stat struct {
	// Total is the sum of all time fields; Idle is idle+iowait.
	Total, Idle uint64
	// CPUs is the number of "cpuN" lines (online CPUs).
	CPUs int
}

// ParseStat parses /proc/stat.
func ParseStat(r io.Reader) (Stat, error) {
	data, err := telemetry.ReadAll(r, "cpu: /proc/stat")
	if err != nil {
		return Stat{}, err
	}
	var s Stat
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				s.CPUs++
			}
			continue
		}
		if len(f) < 5 {
			return Stat{}, fmt.Errorf("cpu: /proc/stat: %w: line %d: %d fields on the cpu line, want at least 4 counters", engines.ErrMalformed, line, len(f))
		}
		for i, v := range f[1:] {
			x, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return Stat{}, fmt.Errorf("cpu: /proc/stat: %w: line %d: field %d %q: %w", engines.ErrMalformed, line, i+1, v, err)
			}
			// user nice system idle iowait irq softirq steal guest guest_nice;
			// guest time is already counted in user/nice.
			if i >= 8 {
				continue
			}
			s.Total += x
			if i == 3 || i == 4 {
				s.Idle += x
			}
		}
		found = true
	}
	if !found {
		return Stat{}, fmt.Errorf("cpu: /proc/stat: %w: no aggregate \"cpu\" line", engines.ErrMalformed)
	}
	return s, nil
}

// ReadStat reads and parses a /proc/stat file.
func ReadStat(path string) (Stat, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stat{}, fmt.Errorf("cpu: %w", err)
	}
	defer f.Close()
	return ParseStat(f)
}

// Utilization is the busy fraction 0..1 between samples a (earlier) and
// b. It is Unknown when no time passed, and an error when the counters
// went backwards (a reboot or a wrong order).
func Utilization(a, b Stat) (engines.Value, error) {
	if b.Total < a.Total || b.Idle < a.Idle {
		return engines.Unknown, fmt.Errorf("cpu: /proc/stat counters went backwards")
	}
	dt := b.Total - a.Total
	if dt == 0 {
		return engines.Unknown, nil
	}
	di := b.Idle - a.Idle
	if di > dt {
		di = dt
	}
	return engines.Known(float64(dt-di) / float64(dt)), nil
}

// Quota is a cgroup v2 cpu.max value.
type Quota struct {
	// Cores is quota/period, or Unknown when the quota is "max".
	Cores engines.Value
}

// ParseCPUMax parses cgroup v2 cpu.max: "max 100000" or "200000 100000".
func ParseCPUMax(r io.Reader) (Quota, error) {
	data, err := telemetry.ReadAll(r, "cpu: cpu.max")
	if err != nil {
		return Quota{}, err
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return Quota{}, fmt.Errorf("cpu: cpu.max: %w: line 1: want \"QUOTA PERIOD\", got %d fields", engines.ErrMalformed, len(f))
	}
	period, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || period == 0 {
		return Quota{}, fmt.Errorf("cpu: cpu.max: %w: line 1: bad period %q", engines.ErrMalformed, f[1])
	}
	if f[0] == "max" {
		return Quota{Cores: engines.Unknown}, nil
	}
	q, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || q == 0 {
		return Quota{}, fmt.Errorf("cpu: cpu.max: %w: line 1: bad quota %q", engines.ErrMalformed, f[0])
	}
	return Quota{Cores: engines.Known(float64(q) / float64(period))}, nil
}

// ReadCPUMax reads and parses a cpu.max file.
func ReadCPUMax(path string) (Quota, error) {
	f, err := os.Open(path)
	if err != nil {
		return Quota{}, fmt.Errorf("cpu: %w", err)
	}
	defer f.Close()
	return ParseCPUMax(f)
}

// Report builds the cpu telemetry.Report: Count is the online CPUs,
// capped by the quota when one is set; Utilization is util.
func Report(s Stat, q Quota, util engines.Value) telemetry.Report {
	n := float64(s.CPUs)
	if c, ok := q.Cores.Get(); ok && (n == 0 || c < n) {
		n = c
	}
	return telemetry.Report{Vendor: "cpu", Source: "procfs", Model: "cpu", Count: n, Utilization: util}
}

// FormatQuota is for logs: "2 cores" or "unlimited".
func FormatQuota(q Quota) string {
	if c, ok := q.Cores.Get(); ok {
		return strconv.FormatFloat(c, 'g', -1, 64) + " cores"
	}
	return "unlimited"
}
