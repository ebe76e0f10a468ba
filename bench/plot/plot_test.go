package plot

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestChartsDecode(t *testing.T) {
	dir := t.TempDir()
	bars := filepath.Join(dir, "bars.png")
	if err := Bars(bars, "req/s", "req/s", []string{"a", "b"}, []Group{{"x", []float64{3, 4}}, {"y", []float64{math.Inf(1), 1}}}); err != nil {
		t.Fatal(err)
	}
	lines := filepath.Join(dir, "lines.png")
	if err := Lines(lines, "p99", "load", "s", []float64{0.5, 0.8, 0.9}, []Line{{"a", []float64{1, 10, math.Inf(1)}}, {"b", []float64{2, 3, 400}}}, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bars, lines} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
			t.Fatalf("%s: size %v", p, b)
		}
		// Something other than white was drawn in the plot area.
		var ink int
		for y := top; y < height-bottom; y += 3 {
			for x := left + 2; x < width-right; x += 3 {
				if r, g, b, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
					ink++
				}
			}
		}
		if ink < 50 {
			t.Fatalf("%s: nearly blank (%d inked samples)", p, ink)
		}
	}
}
