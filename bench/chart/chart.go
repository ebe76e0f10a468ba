package chart

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The size of every chart: 1152×640 pixels.
const (
	width  = 9 * vg.Inch
	height = 5 * vg.Inch
	dpi    = 128
)

// Palette is the series colours, in order (Tableau 10).
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// Colour returns palette colour i (wrapping around).
func Colour(i int) color.RGBA { return Palette[((i%len(Palette))+len(Palette))%len(Palette)] }

var (
	sans      = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold  = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: 700}
	markerCol = color.RGBA{0x44, 0x44, 0x44, 0xff}
	gridCol   = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	dashes    = []vg.Length{vg.Points(6), vg.Points(3)}
)

// Series is one line of a line chart.
type Series struct {
	Name string
	// X and Y have the same length. A point whose Y (or, on a log axis,
	// whose X or Y) cannot be drawn — NaN, infinite, or not positive on a
	// log axis — breaks the line there.
	X, Y []float64
	// Colour is the line's colour; the zero value means Palette[i] for the
	// i-th series.
	Colour color.RGBA
	// Dashed draws a dashed line.
	Dashed bool
	// Points marks every point with a dot (for series with few points).
	Points bool
}

// Marker is an event on the x axis, drawn as a labelled vertical line.
type Marker struct {
	X     float64
	Label string
}

// Lines is a line chart.
type Lines struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	// YMin and YMax fix the y range when YMax > YMin; otherwise it fits
	// the data.
	YMin, YMax float64
	Markers    []Marker
	Series     []Series
}

// Save writes the chart to path as a PNG.
func (c Lines) Save(path string) error {
	if len(c.Series) == 0 {
		return fmt.Errorf("chart: %s: no series", path)
	}
	p := newPlot(c.Title, c.XLabel, c.YLabel)
	p.X.Tick.Marker, p.Y.Tick.Marker = linearTicks{}, linearTicks{}
	if c.LogX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	if c.LogY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	addGrid(p, true)
	leg := newLegend()
	drawn, withPoints := 0, false
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("chart: %s: series %q has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		col := s.Colour
		if col == (color.RGBA{}) {
			col = Colour(i)
		}
		ls := draw.LineStyle{Color: col, Width: vg.Points(1.6)}
		if s.Dashed {
			ls.Dashes = dashes
		}
		gs := draw.GlyphStyle{Color: col, Radius: vg.Points(2.6), Shape: draw.CircleGlyph{}}
		var thumbs []plot.Thumbnailer
		segs := segments(s.X, s.Y, c.LogX, c.LogY)
		name := s.Name
		if len(segs) == 0 {
			name += " (not drawn)"
		}
		withPoints = withPoints || s.Points
		for _, seg := range segs {
			drawn++
			if len(seg) > 1 {
				l, err := plotter.NewLine(seg)
				if err != nil {
					return fmt.Errorf("chart: %s: %w", path, err)
				}
				l.LineStyle = ls
				p.Add(l)
			}
			if s.Points || len(seg) == 1 {
				sc, err := plotter.NewScatter(seg)
				if err != nil {
					return fmt.Errorf("chart: %s: %w", path, err)
				}
				sc.GlyphStyle = gs
				p.Add(sc)
			}
		}
		thumbs = append(thumbs, lineThumb{ls})
		if s.Points {
			thumbs = append(thumbs, glyphThumb{gs})
		}
		leg.Add(name, thumbs...)
	}
	if drawn == 0 {
		return fmt.Errorf("chart: %s: no drawable point", path)
	}
	if len(c.Markers) > 0 {
		p.Add(markers(c.Markers))
	}
	if c.LogX {
		p.X.Min, p.X.Max = niceLogRange(p.X.Min, p.X.Max)
	} else if withPoints {
		// Keep the dots at the ends off the frame.
		pad := (p.X.Max - p.X.Min) * 0.025
		p.X.Min, p.X.Max = p.X.Min-pad, p.X.Max+pad
	}
	if c.LogY {
		p.Y.Min, p.Y.Max = niceLogRange(p.Y.Min, p.Y.Max)
	} else if p.Y.Min > 0 {
		p.Y.Min = 0 // a linear axis of non-negative values starts at zero
	}
	if c.YMax > c.YMin {
		p.Y.Min, p.Y.Max = c.YMin, c.YMax
	}
	return save(p, leg, path)
}

// segments splits a series at the points that cannot be drawn.
func segments(x, y []float64, logX, logY bool) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i := range x {
		ok := finite(x[i]) && finite(y[i]) && (!logX || x[i] > 0) && (!logY || y[i] > 0)
		if !ok {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: x[i], Y: y[i]})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Bars is one series of a grouped bar chart: a value per category.
type Bars struct {
	Name   string
	Values []float64
}

// BarChart is a grouped bar chart: for each category, one bar per series.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Series        []Bars
	// ValueFormat, when set, prints each bar's value above it
	// (a strconv-style format for fmt, e.g. "%.0f").
	ValueFormat string
	// ValueLabel, when set, prints each bar's value above it instead of
	// ValueFormat (e.g. Thousands, for labels that fit narrow bars).
	ValueLabel func(v float64) string
}

// Thousands labels a value as "14.3k" from 10,000 up, else whole.
func Thousands(v float64) string {
	if v >= 10000 {
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// Save writes the chart to path as a PNG. Values that are NaN, infinite
// or negative are left out.
func (c BarChart) Save(path string) error {
	if len(c.Categories) == 0 || len(c.Series) == 0 {
		return fmt.Errorf("chart: %s: no bars", path)
	}
	p := newPlot(c.Title, "", c.YLabel)
	p.Y.Tick.Marker = linearTicks{}
	addGrid(p, false)
	p.X.Tick.Length = 0
	p.X.Tick.Label.Font = font.From(sans, 10)
	p.NominalX(c.Categories...)
	leg := newLegend()
	// The data area is about 75 % of the width; each category gets 70 % of
	// its slot for its bars.
	slot := width * 3 / 4 / vg.Length(len(c.Categories))
	bw := slot * 7 / 10 / vg.Length(len(c.Series))
	ymax := 0.0
	var labels plotter.XYLabels
	for si, s := range c.Series {
		if len(s.Values) != len(c.Categories) {
			return fmt.Errorf("chart: %s: series %q has %d values for %d categories", path, s.Name, len(s.Values), len(c.Categories))
		}
		vals := make(plotter.Values, len(s.Values))
		for i, v := range s.Values {
			if finite(v) && v >= 0 {
				vals[i] = v
				ymax = max(ymax, v)
			}
		}
		b, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return fmt.Errorf("chart: %s: %w", path, err)
		}
		b.Color = Colour(si)
		b.LineStyle.Width = 0
		b.Offset = bw * (vg.Length(si) - vg.Length(len(c.Series)-1)/2)
		p.Add(b)
		if len(c.Series) > 1 {
			leg.Add(s.Name, b)
		}
		if c.ValueFormat != "" || c.ValueLabel != nil {
			for i, v := range s.Values {
				if finite(v) && v >= 0 {
					labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
					if c.ValueLabel != nil {
						labels.Labels = append(labels.Labels, c.ValueLabel(v))
					} else {
						labels.Labels = append(labels.Labels, fmt.Sprintf(c.ValueFormat, v))
					}
				}
			}
			if err := addBarLabels(p, &labels, b.Offset); err != nil {
				return fmt.Errorf("chart: %s: %w", path, err)
			}
			labels = plotter.XYLabels{}
		}
	}
	// Half a slot of room on either side of the first and last category.
	p.X.Min, p.X.Max = -0.5, float64(len(c.Categories))-0.5
	p.Y.Min = 0
	if ymax > 0 {
		p.Y.Max = ymax * 1.12 // room for the value labels
	}
	return save(p, leg, path)
}

func addBarLabels(p *plot.Plot, l *plotter.XYLabels, offset vg.Length) error {
	if len(l.XYs) == 0 {
		return nil
	}
	lb, err := plotter.NewLabels(*l)
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font = font.From(sans, 8)
		lb.TextStyle[i].XAlign = draw.XCenter
		lb.TextStyle[i].YAlign = draw.YBottom
	}
	lb.Offset = vg.Point{X: offset, Y: vg.Points(2)}
	p.Add(lb)
	return nil
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansBold, 13)
	p.Title.Padding = vg.Points(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 11)
		a.Tick.Label.Font = font.From(sans, 10)
		a.Padding = vg.Points(2)
	}
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	return p
}

// addGrid adds light grid lines at the major ticks; vertical ones only
// for a numeric x axis.
func addGrid(p *plot.Plot, vertical bool) {
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridCol, gridCol
	if !vertical {
		g.Vertical.Color = nil
	}
	p.Add(g)
}

// niceLogRange widens [lo, hi] to the nearest 1, 2 or 5 × 10ⁿ around it,
// so a log axis starts and ends on a labelled tick.
func niceLogRange(lo, hi float64) (float64, float64) {
	if !(lo > 0) || !(hi >= lo) {
		return lo, hi
	}
	down := math.Pow(10, math.Floor(math.Log10(lo)))
	for _, m := range []float64{5, 2, 1} {
		if m*down <= lo*(1+1e-9) {
			down *= m
			break
		}
	}
	up := math.Pow(10, math.Floor(math.Log10(hi)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*up >= hi*(1-1e-9) {
			up *= m
			break
		}
	}
	return down, up
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 10)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(3)
	return l
}

// save draws p with leg to its right and writes a PNG.
func save(p *plot.Plot, leg plot.Legend, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	margin := vg.Points(10)
	dc = draw.Crop(dc, margin, -margin, margin, -margin)
	legW := leg.Rectangle(dc).Size().X
	if legW > 0 {
		legW += 2 * margin
	}
	p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	if legW > 0 {
		// Align the legend's top with the data area's top.
		top := p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
		leg.Draw(draw.Crop(dc, dc.Size().X-legW+margin, 0, 0, -top))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("chart: write %s: %w", path, err)
	}
	return nil
}

// markers draws labelled vertical lines.
type markers []Marker

// DataRange makes sure the markers are inside the x range; it leaves the y
// range to the data.
func (m markers) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, mk := range m {
		xmin, xmax = min(xmin, mk.X), max(xmax, mk.X)
	}
	return xmin, xmax, math.Inf(1), math.Inf(-1)
}

func (m markers) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	ls := draw.LineStyle{Color: markerCol, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	ts := p.Title.TextStyle
	ts.Font = font.From(sans, 9)
	ts.Color = markerCol
	ts.XAlign, ts.YAlign = draw.XLeft, draw.YTop
	for _, mk := range m {
		x := trX(mk.X)
		if !c.ContainsX(x) {
			continue
		}
		c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
		if mk.Label != "" {
			c.FillText(ts, vg.Point{X: x + vg.Points(3), Y: c.Max.Y - vg.Points(2)}, mk.Label)
		}
	}
}

type lineThumb struct{ ls draw.LineStyle }

func (t lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.ls, c.Min.X, y, c.Max.X, y)
}

type glyphThumb struct{ gs draw.GlyphStyle }

func (t glyphThumb) Thumbnail(c *draw.Canvas) { c.DrawGlyph(t.gs, c.Center()) }

// linearTicks labels about seven round values (steps of 1, 2 or 5 × 10ⁿ)
// and puts unlabelled minor ticks between them.
type linearTicks struct{}

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: formatTick(lo, 0)}}
	}
	step, minor := niceStep((hi - lo) / 7)
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ts []plot.Tick
	for k := math.Ceil(lo/minor - 1e-9); k*minor <= hi+minor*1e-9; k++ {
		v := k * minor
		if q := v / step; math.Abs(q-math.Round(q)) < 1e-6 {
			ts = append(ts, plot.Tick{Value: v, Label: formatTick(v, prec)})
		} else {
			ts = append(ts, plot.Tick{Value: v})
		}
	}
	return ts
}

// niceStep returns the smallest of 1, 2, 5 × 10ⁿ at least raw, and the
// minor step that goes with it.
func niceStep(raw float64) (step, minor float64) {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			step = m * p
			break
		}
	}
	switch step / p {
	case 2:
		return step, step / 4
	default:
		return step, step / 5
	}
}

func formatTick(v float64, prec int) string {
	if math.Abs(v) < 1e-12 {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// logTicks labels round linear steps when the range spans less than a
// decade (a log scale then looks almost linear), 1, 2 and 5 of each decade
// up to three decades, only the powers of ten beyond that, and puts minor
// ticks at the other multiples.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) {
		return nil
	}
	span := math.Log10(hi / lo)
	if span < 1 {
		return linearTicks{}.Ticks(lo, hi)
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		d := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * d
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (span <= 3 && (m == 2 || m == 5)) {
				t.Label = formatTick(v, max(0, -int(e)))
			}
			ts = append(ts, t)
		}
	}
	return ts
}
