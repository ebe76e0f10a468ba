package policysim

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/chart"
)

// ChartPoint is what the charts show of one (load, policy) run. A value
// that is NaN (no run) or +Inf (more failures than the quantile allows) is
// not drawn.
type ChartPoint struct {
	P99, P999          float64 // seconds
	UtilSpread, UtilCV float64
}

// ChartData is the data of the policy charts: Points[policy][load].
type ChartData struct {
	Loads    []float64 // fractions of capacity
	Policies []string
	Points   [][]ChartPoint
}

// ChartData returns what the charts of m show.
func (m *Matrix) ChartData() ChartData {
	d := ChartData{Loads: m.Config.Loads, Policies: m.Config.Policies}
	for _, p := range m.Config.Policies {
		row := make([]ChartPoint, len(d.Loads))
		for i, l := range d.Loads {
			if r := m.at(l, p); r != nil {
				row[i] = ChartPoint{P99: r.P99, P999: r.P999, UtilSpread: r.UtilSpread, UtilCV: r.UtilCV}
			} else {
				row[i] = ChartPoint{P99: math.NaN(), P999: math.NaN(), UtilSpread: math.NaN(), UtilCV: math.NaN()}
			}
		}
		d.Points = append(d.Points, row)
	}
	return d
}

// The chart files Matrix.Write and WriteCharts write.
const (
	P99Chart    = "policies-p99.png"
	P999Chart   = "policies-p999.png"
	SpreadChart = "policies-util-spread.png"
	CVChart     = "policies-util-cv.png"
)

// WriteCharts writes the four policy charts into dir. The extra policies
// (Extras) are dashed.
func WriteCharts(dir string, d ChartData) error {
	if len(d.Loads) == 0 || len(d.Policies) == 0 || len(d.Points) != len(d.Policies) {
		return errors.New("policysim: charts: no data, or not one row of points per policy")
	}
	x := make([]float64, len(d.Loads))
	for i, l := range d.Loads {
		x[i] = 100 * l
	}
	charts := []struct {
		file, title, ylabel string
		log                 bool
		value               func(ChartPoint) float64
	}{
		{P99Chart, "p99 latency vs offered load (not drawn: more than 1 % of requests dropped or failed)", "p99, s (log scale)", true, func(p ChartPoint) float64 { return p.P99 }},
		{P999Chart, "p99.9 latency vs offered load (not drawn: more than 0.1 % dropped or failed)", "p99.9, s (log scale)", true, func(p ChartPoint) float64 { return p.P999 }},
		{SpreadChart, "Utilisation spread over nodes (max − min) vs offered load", "max − min utilisation", false, func(p ChartPoint) float64 { return p.UtilSpread }},
		{CVChart, "Utilisation coefficient of variation over nodes vs offered load", "CV of utilisation", false, func(p ChartPoint) float64 { return p.UtilCV }},
	}
	for _, c := range charts {
		lc := chart.Lines{Title: c.title, XLabel: "offered load, % of the fleet's capacity", YLabel: c.ylabel, LogY: c.log}
		for pi, p := range d.Policies {
			if len(d.Points[pi]) != len(d.Loads) {
				return fmt.Errorf("policysim: charts: policy %s has %d points for %d loads", p, len(d.Points[pi]), len(d.Loads))
			}
			y := make([]float64, len(d.Loads))
			for i, pt := range d.Points[pi] {
				y[i] = c.value(pt)
			}
			name := p
			if p == "dynamic-swrr" {
				name += " (default)"
			}
			lc.Series = append(lc.Series, chart.Series{Name: name, X: x, Y: y, Points: true, Dashed: slices.Contains(Extras(), p)})
		}
		if err := lc.Save(filepath.Join(dir, c.file)); err != nil {
			return fmt.Errorf("policysim: %w", err)
		}
	}
	return nil
}

// tableHeader starts each per-load results table that Matrix.Tables writes.
const tableHeader = "| policy | p50 s | p99 s | p99.9 s | p99 of completed s |"

// ParseTables reads the chart data back from a report written by
// Matrix.Write (its per-load results tables), so that the charts of a
// committed report can be redrawn without rerunning the simulation. "∞"
// reads as +Inf. The error names the line that does not parse.
func ParseTables(md string) (ChartData, error) {
	var d ChartData
	points := make(map[string]map[float64]ChartPoint)
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, 1<<20)
	load, in := math.NaN(), false
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "### Load "):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(text, "### Load "), "%")), 64)
			if err != nil {
				return ChartData{}, fmt.Errorf("policysim: line %d: load: %w", line, err)
			}
			load, in = v/100, false
			d.Loads = append(d.Loads, load)
			continue
		case strings.HasPrefix(text, "#"):
			load, in = math.NaN(), false
			continue
		case strings.HasPrefix(text, tableHeader):
			if math.IsNaN(load) {
				return ChartData{}, fmt.Errorf("policysim: line %d: a results table outside a \"### Load\" section", line)
			}
			in = true
			continue
		case !in || strings.HasPrefix(text, "| ---"):
			continue
		case !strings.HasPrefix(text, "|"):
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) != 11 {
			return ChartData{}, fmt.Errorf("policysim: line %d: %d cells, want 11", line, len(cells))
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		// "**dynamic-swrr** (default)", "*capacity-c2* (note)", "p2c".
		name, _, _ := strings.Cut(cells[0], " (")
		name = strings.Trim(name, "*")
		var pt ChartPoint
		for _, f := range []struct {
			cell int
			dst  *float64
		}{{2, &pt.P99}, {3, &pt.P999}, {9, &pt.UtilSpread}, {10, &pt.UtilCV}} {
			v, err := parseSecs(cells[f.cell])
			if err != nil {
				return ChartData{}, fmt.Errorf("policysim: line %d, column %d: %w", line, f.cell+1, err)
			}
			*f.dst = v
		}
		if points[name] == nil {
			points[name] = make(map[float64]ChartPoint)
			d.Policies = append(d.Policies, name)
		}
		points[name][load] = pt
	}
	if err := sc.Err(); err != nil {
		return ChartData{}, fmt.Errorf("policysim: %w", err)
	}
	if len(d.Policies) == 0 {
		return ChartData{}, errors.New("policysim: no results table")
	}
	for _, p := range d.Policies {
		row := make([]ChartPoint, len(d.Loads))
		for i, l := range d.Loads {
			pt, ok := points[p][l]
			if !ok {
				pt = ChartPoint{P99: math.NaN(), P999: math.NaN(), UtilSpread: math.NaN(), UtilCV: math.NaN()}
			}
			row[i] = pt
		}
		d.Points = append(d.Points, row)
	}
	return d, nil
}

// parseSecs parses a number as secs writes it ("∞" is +Inf).
func parseSecs(s string) (float64, error) {
	if s == "∞" {
		return math.Inf(1), nil
	}
	return strconv.ParseFloat(s, 64)
}
