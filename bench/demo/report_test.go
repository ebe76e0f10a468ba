package demo

import (
	"math"
	"slices"
	"testing"
)

func TestRollingMean(t *testing.T) {
	for _, tc := range []struct {
		name   string
		y      []float64
		window int
		want   []float64
	}{
		{"window of one", []float64{1, 2, 3}, 1, []float64{1, 2, 3}},
		{"window of zero counts as one", []float64{1, 2, 3}, 0, []float64{1, 2, 3}},
		{"trailing, shorter at the start", []float64{0, 3, 6, 9}, 2, []float64{0, 1.5, 4.5, 7.5}},
		{"window wider than the data", []float64{2, 4}, 5, []float64{2, 3}},
		// The step at index 3 moves nothing before it.
		{"a step moves nothing before it", []float64{0, 0, 0, 1, 1, 1}, 3, []float64{0, 0, 0, 1.0 / 3, 2.0 / 3, 1}},
		{"empty", nil, 2, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rollingMean(tc.y, tc.window)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-12 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestCDF(t *testing.T) {
	x, y := cdf([]float64{30, 10, 20, 40})
	if !slices.Equal(x, []float64{10, 20, 30, 40}) || !slices.Equal(y, []float64{0.25, 0.5, 0.75, 1}) {
		t.Errorf("cdf: x %v, y %v", x, y)
	}
	// Thinned to about 1000 points, still ending at the maximum with 1.
	big := make([]float64, 5003)
	for i := range big {
		big[i] = float64(len(big) - i)
	}
	x, y = cdf(big)
	if len(x) > 1002 || len(x) < 1000 {
		t.Errorf("thinned to %d points", len(x))
	}
	if x[len(x)-1] != 5003 || y[len(y)-1] != 1 || x[0] != 1 {
		t.Errorf("ends: (%v, %v) … (%v, %v)", x[0], y[0], x[len(x)-1], y[len(y)-1])
	}
	if !slices.IsSorted(x) || !slices.IsSorted(y) {
		t.Error("not monotonic")
	}
	if x, y := cdf(nil); x != nil || y != nil {
		t.Error("cdf of nothing is not empty")
	}
}
