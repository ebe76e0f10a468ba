package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPoissonSchedule(t *testing.T) {
	cases := []struct {
		name  string
		rate  float64
		d     time.Duration
		limit int
	}{
		{"1k-per-s-for-20s", 1000, 20 * time.Second, 0},
		{"50-per-s-for-400s", 50, 400 * time.Second, 0},
		{"count-bound", 1000, time.Hour, 5000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := PoissonSchedule(rand.New(rand.NewPCG(7, 9)), c.rate, c.d, c.limit)
			want := c.rate * c.d.Seconds()
			if c.limit > 0 {
				if len(s) != c.limit {
					t.Fatalf("%d arrivals, want the limit %d", len(s), c.limit)
				}
			} else if math.Abs(float64(len(s))-want) > 4*math.Sqrt(want) {
				// A Poisson count has variance = mean: 4σ.
				t.Fatalf("%d arrivals, want %v ± %v", len(s), want, 4*math.Sqrt(want))
			}
			// Gaps: increasing, exponential with mean 1/rate (mean and
			// coefficient of variation 1), and memoryless: P(gap > mean)
			// = 1/e.
			var sum, sq float64
			var over int
			prev := time.Duration(0)
			for i, x := range s {
				if x < prev || x >= c.d {
					t.Fatalf("offset %d = %v out of order or range", i, x)
				}
				g := (x - prev).Seconds()
				prev = x
				sum += g
				sq += g * g
				if g > 1/c.rate {
					over++
				}
			}
			n := float64(len(s))
			mean := sum / n
			cv := math.Sqrt(sq/n-mean*mean) / mean
			if math.Abs(mean*c.rate-1) > 0.05 {
				t.Errorf("mean gap %v, want %v", mean, 1/c.rate)
			}
			if math.Abs(cv-1) > 0.05 {
				t.Errorf("gap coefficient of variation %v, want 1", cv)
			}
			if p := float64(over) / n; math.Abs(p-1/math.E) > 0.02 {
				t.Errorf("P(gap > mean) = %v, want 1/e", p)
			}
		})
	}
	if s := PoissonSchedule(rand.New(rand.NewPCG(1, 1)), 0, time.Second, 0); s != nil {
		t.Errorf("rate 0 gave %d arrivals", len(s))
	}
	a := PoissonSchedule(rand.New(rand.NewPCG(3, 4)), 100, time.Second, 0)
	b := PoissonSchedule(rand.New(rand.NewPCG(3, 4)), 100, time.Second, 0)
	if len(a) != len(b) || (len(a) > 0 && a[len(a)-1] != b[len(b)-1]) {
		t.Errorf("not deterministic given the seed")
	}
}
