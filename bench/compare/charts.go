package compare

import (
	"bufio"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/chart"
)

// ChartRow is what the charts show of one contender: medians over the
// rounds.
type ChartRow struct {
	Name          string
	RPS, P50, P99 float64 // req/s; ms
}

// WriteCharts writes prefix-rps.png and prefix-latency.png into dir.
func WriteCharts(dir, prefix string, rows []ChartRow) error {
	if len(rows) == 0 {
		return errors.New("compare: charts: no contender to draw")
	}
	rps := chart.BarChart{
		Title:       "Proxy comparison: requests per second (median of rounds), one proxy core",
		YLabel:      "req/s",
		ValueFormat: "%.0f",
		Series:      []chart.Bars{{Name: "req/s"}},
	}
	lat := chart.BarChart{
		Title:       "Proxy comparison: client latency (median of rounds)",
		YLabel:      "ms",
		ValueFormat: "%.2f",
		Series:      []chart.Bars{{Name: "p50"}, {Name: "p99"}},
	}
	for _, r := range rows {
		rps.Categories = append(rps.Categories, r.Name)
		lat.Categories = append(lat.Categories, r.Name)
		rps.Series[0].Values = append(rps.Series[0].Values, r.RPS)
		lat.Series[0].Values = append(lat.Series[0].Values, r.P50)
		lat.Series[1].Values = append(lat.Series[1].Values, r.P99)
	}
	if err := rps.Save(filepath.Join(dir, prefix+"-rps.png")); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := lat.Save(filepath.Join(dir, prefix+"-latency.png")); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	return nil
}

// tableHeader starts the results table that Report.Table writes.
const tableHeader = "| contender | req/s (median) | req/s per round | p50 ms (median) | p99 ms (median) |"

// ParseTable reads the chart rows back from a report written by
// Report.Write (its results table), so that the charts of a committed
// report can be redrawn without rerunning it. Skipped contenders are left
// out. The error names the line that does not parse.
func ParseTable(md string) ([]ChartRow, error) {
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, 1<<20)
	var rows []ChartRow
	in := false
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, tableHeader):
			if in || rows != nil {
				return nil, fmt.Errorf("compare: line %d: a second results table", line)
			}
			in = true
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
		row := ChartRow{Name: cells[0]}
		for _, f := range []struct {
			cell int
			dst  *float64
		}{{1, &row.RPS}, {3, &row.P50}, {4, &row.P99}} {
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
