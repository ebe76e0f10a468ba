package chart

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

// decode reads a PNG written by Save.
func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// count returns how many pixels of img have colour c.
func count(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
				n++
			}
		}
	}
	return n
}

func TestLinesDrawsEverySeries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lines.png")
	x := []float64{0, 1, 2, 3, 4}
	c := Lines{
		Title: "t", XLabel: "x", YLabel: "y",
		Markers: []Marker{{X: 2, Label: "event"}},
		Series: []Series{
			{Name: "a", X: x, Y: []float64{1, 2, 3, 2, 1}},
			{Name: "b", X: x, Y: []float64{3, math.NaN(), 1, math.Inf(1), 2}, Points: true},
		},
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	if b := img.Bounds(); b.Dx() != 1152 || b.Dy() != 640 {
		t.Errorf("size %v, want 1152×640", b)
	}
	for i := range c.Series {
		// Each series shows in its palette colour (line, dots and legend).
		if n := count(img, Colour(i)); n < 100 {
			t.Errorf("series %d: %d pixels of its colour", i, n)
		}
	}
	if n := count(img, Colour(2)); n != 0 {
		t.Errorf("%d pixels of a colour no series has", n)
	}
}

func TestLinesErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    Lines
		want string
	}{
		{"no series", Lines{}, "no series"},
		{"lengths differ", Lines{Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}}, `series "a" has 2 x and 1 y values`},
		{"nothing drawable", Lines{LogY: true, Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{0, math.NaN()}}}}, "no drawable point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Save(filepath.Join(dir, "x.png"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBarChart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bars.png")
	c := BarChart{
		Title: "t", YLabel: "y", ValueFormat: "%.0f",
		Categories: []string{"a", "b", "c"},
		Series:     []Bars{{Name: "one", Values: []float64{1, 2, 3}}, {Name: "two", Values: []float64{3, math.NaN(), 1}}},
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	one, two := count(img, Colour(0)), count(img, Colour(1))
	// Series one's bars add up to 6, two's to 4: the filled areas follow.
	if one == 0 || two == 0 || math.Abs(float64(one)/float64(two)-1.5) > 0.15 {
		t.Errorf("bar areas %d and %d, want a ratio of about 1.5", one, two)
	}
	c.Series[1].Values = c.Series[1].Values[:2]
	if err := c.Save(path); err == nil || !strings.Contains(err.Error(), `series "two" has 2 values for 3 categories`) {
		t.Errorf("error %v", err)
	}
}

func labels(ts []plot.Tick) []string {
	var out []string
	for _, t := range ts {
		if t.Label != "" {
			out = append(out, t.Label)
		}
	}
	return out
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ticks  []plot.Tick
		labels []string
	}{
		{"seconds", linearTicks{}.Ticks(0.25, 30), []string{"5", "10", "15", "20", "25", "30"}},
		{"utilisation", linearTicks{}.Ticks(0, 1), []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{"requests per second", linearTicks{}.Ticks(0, 63000), []string{"0", "10000", "20000", "30000", "40000", "50000", "60000"}},
		{"log, within a decade", logTicks{}.Ticks(100, 500), []string{"100", "200", "300", "400", "500"}},
		{"log, narrow", logTicks{}.Ticks(100, 200), []string{"100", "120", "140", "160", "180", "200"}},
		{"log, three decades", logTicks{}.Ticks(1, 1000), []string{"1", "2", "5", "10", "20", "50", "100", "200", "500", "1000"}},
		{"log, wide", logTicks{}.Ticks(0.01, 1000), []string{"0.01", "0.1", "1", "10", "100", "1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := labels(tc.ticks); !slices.Equal(got, tc.labels) {
				t.Errorf("labels %q, want %q", got, tc.labels)
			}
			if len(tc.ticks) > 60 {
				t.Errorf("%d ticks", len(tc.ticks))
			}
		})
	}
}

func TestNiceLogRange(t *testing.T) {
	for _, tc := range []struct{ lo, hi, wlo, whi float64 }{
		{103, 452, 100, 500},
		{26, 160, 20, 200},
		{0.3, 0.7, 0.2, 1},
	} {
		lo, hi := niceLogRange(tc.lo, tc.hi)
		if math.Abs(lo-tc.wlo) > 1e-9 || math.Abs(hi-tc.whi) > 1e-9 {
			t.Errorf("niceLogRange(%v, %v) = %v, %v; want %v, %v", tc.lo, tc.hi, lo, hi, tc.wlo, tc.whi)
		}
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999.6: "1000", 9999: "9999", 10000: "10.0k", 14293: "14.3k", 34328.4: "34.3k"} {
		if got := Thousands(v); got != want {
			t.Errorf("Thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
