// Package plot draws the few PNG charts the benchmark reports need (bar
// charts and line charts with a legend) with image/png and the
// golang.org/x/image 7×13 bitmap font. It is deliberately small: no
// layout engine, fixed sizes, linear or log axes.
//
// Functions are safe for concurrent use; they share no state.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Palette is the series colours, in order.
var Palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0x17, 0xbe, 0xcf, 0xff}, {0xbc, 0xbd, 0x22, 0xff}, {0x00, 0x00, 0x00, 0xff},
}

const (
	width, height = 900, 520
	left, right   = 80, 200 // right margin holds the legend
	top, bottom   = 40, 60
)

type canvas struct{ img *image.RGBA }

func newCanvas() *canvas {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.White}, image.Point{}, draw.Src)
	return &canvas{img}
}

func (c *canvas) text(x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return 7 * len(s) }

func (c *canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), &image.Uniform{col}, image.Point{}, draw.Src)
}

// line draws a line of the given thickness (Bresenham with a square pen).
func (c *canvas) line(x0, y0, x1, y1, th int, col color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.rect(x0-th/2, y0-th/2, x0-th/2+th, y0-th/2+th, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func (c *canvas) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return fmt.Errorf("plot: encode %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// axis maps data values to pixels.
type axis struct {
	lo, hi float64
	log    bool
	p0, p1 int // pixel of lo and hi
}

func (a axis) px(v float64) int {
	f := (v - a.lo) / (a.hi - a.lo)
	if a.log {
		f = (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return a.p0 + int(math.Round(f*float64(a.p1-a.p0)))
}

// ticks returns tick values: decades on a log axis, ~6 round steps on a
// linear one.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for e := math.Floor(math.Log10(a.lo)); e <= math.Ceil(math.Log10(a.hi)); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if v >= a.lo && v <= a.hi {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 6)
	for v := math.Ceil(a.lo/step) * step; v <= a.hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if !(raw > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func label(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

var (
	grey  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	black = color.RGBA{0, 0, 0, 0xff}
)

func (c *canvas) frame(title, xlabel, ylabel string, y axis) {
	c.text(left, 22, title, black)
	c.text(left+(width-left-right)/2-textWidth(xlabel)/2, height-12, xlabel, black)
	c.text(8, top-8, ylabel, black)
	for _, t := range y.ticks() {
		py := y.px(t)
		c.line(left, py, width-right, py, 1, grey)
		s := label(t)
		c.text(left-6-textWidth(s), py+4, s, black)
	}
	c.line(left, top, left, height-bottom, 1, black)
	c.line(left, height-bottom, width-right, height-bottom, 1, black)
}

func (c *canvas) legend(names []string) {
	for i, n := range names {
		y := top + 10 + 18*i
		c.rect(width-right+12, y-8, width-right+24, y+2, Palette[i%len(Palette)])
		c.text(width-right+30, y+2, n, black)
	}
}

// Group is one group of bars (one x label) with a value per series.
type Group struct {
	Label  string
	Values []float64
}

// Bars writes a grouped bar chart to path. Values that are not finite or
// not positive are left out.
func Bars(path, title, ylabel string, series []string, groups []Group) error {
	c := newCanvas()
	hi := 0.0
	for _, g := range groups {
		for _, v := range g.Values {
			if !math.IsInf(v, 0) && v > hi {
				hi = v
			}
		}
	}
	if hi == 0 {
		hi = 1
	}
	y := axis{lo: 0, hi: hi * 1.1, p0: height - bottom, p1: top}
	c.frame(title, "", ylabel, y)
	gw := (width - left - right) / max(len(groups), 1)
	for gi, g := range groups {
		x0 := left + gi*gw
		bw := max((gw-16)/max(len(g.Values), 1), 2)
		for si, v := range g.Values {
			if !(v > 0) || math.IsInf(v, 0) {
				continue
			}
			bx := x0 + 8 + si*bw
			c.rect(bx, y.px(v), bx+bw-2, height-bottom, Palette[si%len(Palette)])
		}
		c.text(x0+gw/2-textWidth(g.Label)/2, height-bottom+16, g.Label, black)
	}
	if len(series) > 1 {
		c.legend(series)
	}
	return c.save(path)
}

// Line is one series of a line chart: Y[i] at the chart's X[i]; NaN or
// infinite values break the line.
type Line struct {
	Name string
	Y    []float64
}

// Lines writes a line chart to path. logY draws the y axis in decades.
func Lines(path, title, xlabel, ylabel string, x []float64, lines []Line, logY bool) error {
	c := newCanvas()
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		for _, v := range l.Y {
			if math.IsNaN(v) || math.IsInf(v, 0) || (logY && v <= 0) {
				continue
			}
			ylo, yhi = min(ylo, v), max(yhi, v)
		}
	}
	if math.IsInf(ylo, 0) {
		ylo, yhi = 0, 1
	}
	if logY {
		ylo, yhi = math.Pow(10, math.Floor(math.Log10(ylo))), math.Pow(10, math.Ceil(math.Log10(yhi)))
	} else {
		ylo = min(0, ylo)
		yhi *= 1.1
		if yhi == ylo {
			yhi = ylo + 1
		}
	}
	xlo, xhi := x[0], x[len(x)-1]
	if xhi == xlo {
		xhi = xlo + 1
	}
	pad := (xhi - xlo) * 0.05
	xa := axis{lo: xlo - pad, hi: xhi + pad, p0: left, p1: width - right}
	ya := axis{lo: ylo, hi: yhi, log: logY, p0: height - bottom, p1: top}
	c.frame(title, xlabel, ylabel, ya)
	for _, xv := range x {
		px := xa.px(xv)
		c.line(px, height-bottom, px, height-bottom+4, 1, black)
		s := label(xv)
		c.text(px-textWidth(s)/2, height-bottom+18, s, black)
	}
	names := make([]string, len(lines))
	for li, l := range lines {
		names[li] = l.Name
		col := Palette[li%len(Palette)]
		prevOK := false
		var px0, py0 int
		for i, v := range l.Y {
			ok := i < len(x) && !math.IsNaN(v) && !math.IsInf(v, 0) && (!logY || v > 0)
			if !ok {
				prevOK = false
				continue
			}
			px, py := xa.px(x[i]), ya.px(v)
			c.rect(px-3, py-3, px+4, py+4, col)
			if prevOK {
				c.line(px0, py0, px, py, 2, col)
			}
			px0, py0, prevOK = px, py, true
		}
	}
	c.legend(names)
	return c.save(path)
}
