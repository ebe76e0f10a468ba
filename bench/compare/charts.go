package compare

import (
	"bufio"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/chart"
)

// ChartRow is what the charts show of one contender in one section:
// medians over the rounds.
type ChartRow struct {
	Section       string // SectionHTTP1, SectionH2 or SectionGRPC
	Name          string
	RPS, P50, P99 float64 // req/s; ms
	CPU           float64 // µs per request; 0 when not measured
}

// chartRows returns the chart rows of every section that ran.
func (r *Report) chartRows() []ChartRow {
	var rows []ChartRow
	for _, sec := range Sections() {
		for _, row := range r.SectionRows(sec) {
			if row.Skipped == "" {
				rows = append(rows, ChartRow{Section: sec, Name: row.Name, RPS: row.MedianRPS(), P50: row.MedianP50(), P99: row.MedianP99(), CPU: row.MedianCPUPerReq()})
			}
		}
	}
	return rows
}

// WriteCharts writes prefix-rps.png, prefix-latency.png and prefix-cpu.png
// into dir: a group of bars per contender, a bar per section (and per
// quantile for latency). A contender missing from a section has no bar
// there.
func WriteCharts(dir, prefix string, rows []ChartRow) error {
	if len(rows) == 0 {
		return errors.New("compare: charts: no contender to draw")
	}
	var secs, names []string
	for _, r := range rows {
		if !slices.Contains(secs, r.Section) {
			secs = append(secs, r.Section)
		}
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	rps := chart.BarChart{
		Title:      "Proxy comparison: requests per second (median of rounds), one proxy core",
		YLabel:     "req/s",
		ValueLabel: chart.Thousands, // five-digit labels collide on neighbouring bars
		Categories: names,
	}
	lat := chart.BarChart{
		Title:      "Proxy comparison: client latency, ms (median of rounds)",
		YLabel:     "ms",
		Categories: names,
	}
	cpu := chart.BarChart{
		Title:       "Proxy comparison: proxy CPU per request (median of rounds)",
		YLabel:      "µs per request",
		ValueFormat: "%.1f",
		Categories:  names,
	}
	nan := func() []float64 {
		v := make([]float64, len(names))
		for i := range v {
			v[i] = -1 // left out of the chart
		}
		return v
	}
	for _, sec := range secs {
		r, p50, p99, c := nan(), nan(), nan(), nan()
		for _, row := range rows {
			if row.Section != sec {
				continue
			}
			i := slices.Index(names, row.Name)
			r[i], p50[i], p99[i] = row.RPS, row.P50, row.P99
			if row.CPU > 0 {
				c[i] = row.CPU
			}
		}
		title := sectionTitleShort(sec)
		rps.Series = append(rps.Series, chart.Bars{Name: title, Values: r})
		lat.Series = append(lat.Series, chart.Bars{Name: title + " p50", Values: p50}, chart.Bars{Name: title + " p99", Values: p99})
		cpu.Series = append(cpu.Series, chart.Bars{Name: title, Values: c})
	}
	for _, c := range []struct {
		chart chart.BarChart
		name  string
	}{{rps, "-rps.png"}, {lat, "-latency.png"}, {cpu, "-cpu.png"}} {
		if err := c.chart.Save(filepath.Join(dir, prefix+c.name)); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
	}
	return nil
}

// sectionTitleShort names a section in a chart legend.
func sectionTitleShort(section string) string {
	switch section {
	case SectionH2:
		return "HTTP/2"
	case SectionGRPC:
		return "gRPC"
	}
	return "HTTP/1.1"
}

// tableHeader starts each results table that Report.Write writes.
const tableHeader = "| contender | req/s (median) | req/s per round | p50 ms (median) | p99 ms (median) |"

// ParseTable reads the chart rows back from a report written by
// Report.Write (its results tables, each under its section's heading), so
// that the charts of a committed report can be redrawn without rerunning
// it. Skipped contenders are left out. The error names the line that does
// not parse.
func ParseTable(md string) ([]ChartRow, error) {
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, 1<<20)
	var rows []ChartRow
	section, in, cpuCol := SectionHTTP1, false, -1
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "## "):
			section = SectionHTTP1
			for _, sec := range Sections() {
				if strings.TrimPrefix(text, "## ") == sectionTitle(sec) {
					section = sec
				}
			}
			continue
		case strings.HasPrefix(text, tableHeader):
			in, cpuCol = true, -1
			for i, h := range strings.Split(strings.Trim(text, "|"), "|") {
				if strings.HasPrefix(strings.TrimSpace(h), "CPU µs/req") {
					cpuCol = i
				}
			}
			continue
		case !in:
			continue
		case !strings.HasPrefix(text, "|"):
			in = false
			continue
		case strings.HasPrefix(text, "| ---"):
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) < 5 {
			return nil, fmt.Errorf("compare: line %d: %d cells, want at least 5", line, len(cells))
		}
		if strings.HasPrefix(cells[1], "skipped") {
			continue
		}
		row := ChartRow{Section: section, Name: cells[0]}
		fields := []struct {
			cell int
			dst  *float64
		}{{1, &row.RPS}, {3, &row.P50}, {4, &row.P99}}
		if cpuCol >= 0 && cpuCol < len(cells) && cells[cpuCol] != "–" {
			fields = append(fields, struct {
				cell int
				dst  *float64
			}{cpuCol, &row.CPU})
		}
		for _, f := range fields {
			v, err := strconv.ParseFloat(cells[f.cell], 64)
			if err != nil {
				return nil, fmt.Errorf("compare: line %d, column %d: %w", line, f.cell+1, err)
			}
			*f.dst = v
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	if rows == nil {
		return nil, errors.New("compare: no results table")
	}
	return rows, nil
}
