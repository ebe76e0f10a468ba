package affinity

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/switchyard-dev/switchyard/bench/hist"
)

// plots writes the report's charts into dir and returns their file names.
func (m *Matrix) plots(dir string) ([]string, error) {
	var files []string
	save := func(p *plot.Plot, name string) error {
		p.Legend.Left = false
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("affinity: plot %s: %w", name, err)
		}
		files = append(files, name)
		return nil
	}
	policies := m.Config.Policies
	for _, f := range m.Config.Fleets {
		for _, what := range []struct {
			file, title string
			h           func(r *Result) *hist.Histogram
		}{
			{"affinity-ttft-cdf-%s.png", "TTFT CDF, %s fleet, load 0.7", func(r *Result) *hist.Histogram { return &r.TTFT }},
			{"affinity-latency-cdf-%s.png", "End-to-end latency CDF, %s fleet, load 0.7", func(r *Result) *hist.Histogram { return &r.Latency }},
		} {
			p := plot.New()
			p.Title.Text = fmt.Sprintf(what.title, f.Name)
			p.X.Label.Text = "seconds (log)"
			p.Y.Label.Text = "fraction of requests"
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			p.Y.Min, p.Y.Max = 0, 1
			p.Legend.Top = false // the CDFs leave the bottom right empty
			for i, pol := range policies {
				r := m.find(KindMain, f.Name, pol, 0.7)
				if r == nil {
					continue
				}
				if err := addLine(p, i, pol, cdf(what.h(r))); err != nil {
					return nil, err
				}
			}
			if err := save(p, fmt.Sprintf(what.file, f.Name)); err != nil {
				return nil, err
			}
		}
		// Percentiles and hit rate against load.
		for _, what := range []struct {
			file, title, ylabel string
			log                 bool
			v                   func(r *Result) float64
		}{
			{"affinity-ttft-p99-%s.png", "TTFT p99 vs load, %s fleet", "TTFT p99, s (log)", true, func(r *Result) float64 { return Seconds(&r.TTFT, 0.99) }},
			{"affinity-hit-rate-%s.png", "Prefix-cache hit rate vs load, %s fleet", "cached prompt tokens / prompt tokens", false, func(r *Result) float64 { return r.HitRate() }},
		} {
			p := plot.New()
			p.Title.Text = fmt.Sprintf(what.title, f.Name)
			p.X.Label.Text = "offered load"
			p.Y.Label.Text = what.ylabel
			p.Legend.Top = true
			if what.log {
				p.Y.Scale = plot.LogScale{}
				p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
			} else {
				p.Y.Min, p.Y.Max = 0, 1
				p.Legend.Top = false
			}
			for i, pol := range policies {
				var xys plotter.XYs
				for _, l := range m.Config.Loads {
					if r := m.find(KindMain, f.Name, pol, l); r != nil {
						if v := what.v(r); !math.IsNaN(v) && (!what.log || v > 0) {
							xys = append(xys, plotter.XY{X: l, Y: v})
						}
					}
				}
				if len(xys) == 0 {
					continue
				}
				if err := addLine(p, i, pol, xys); err != nil {
					return nil, err
				}
			}
			if err := save(p, fmt.Sprintf(what.file, f.Name)); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// addLine adds a series drawn in the i-th colour and dash pattern.
func addLine(p *plot.Plot, i int, name string, xys plotter.XYs) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("affinity: plot: %w", err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	pts.Color = plotutil.Color(i)
	pts.Shape = plotutil.Shape(i)
	pts.Radius = vg.Points(2)
	if len(xys) > 12 {
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = 0
	}
	p.Add(l, pts)
	p.Legend.Add(name, l)
	return nil
}

// cdf returns the CDF of h in seconds, one point per bucket, thinned to at
// most 200 points.
func cdf(h *hist.Histogram) plotter.XYs {
	bs := h.Buckets()
	total := float64(h.Count())
	var xys plotter.XYs
	var seen float64
	for _, b := range bs {
		seen += float64(b.Count)
		x := float64(b.Hi) / 1e9
		if x <= 0 {
			x = 1e-4
		}
		xys = append(xys, plotter.XY{X: x, Y: seen / total})
	}
	if n := len(xys); n > 200 {
		step := n / 200
		var thin plotter.XYs
		for i := 0; i < n; i += step {
			thin = append(thin, xys[i])
		}
		if thin[len(thin)-1] != xys[n-1] {
			thin = append(thin, xys[n-1])
		}
		xys = thin
	}
	slices.SortFunc(xys, func(a, b plotter.XY) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
	return xys
}
