package split_test

import (
	"strconv"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/split"
)

func mustNew(t testing.TB, cfg split.Config, opts ...split.Option) *split.Splitter {
	t.Helper()
	s, err := split.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ab(a, b float64) split.Config {
	return split.Config{Variants: split.Variants{{Name: "model-a", Weight: a}, {Name: "model-b", Weight: b}}}
}

func key(buf []byte, i int) []byte {
	return strconv.AppendInt(append(buf[:0], "user-"...), int64(i), 10)
}

// TestSplitLandsOnWeights: a 90/10 split over 100,000 keyed requests lands
// within 1 % of its weights (issue 6).
func TestSplitLandsOnWeights(t *testing.T) {
	cases := []struct {
		name    string
		weights []float64
	}{
		{"90/10", []float64{90, 10}},
		{"50/50", []float64{50, 50}},
		{"70/20/10", []float64{70, 20, 10}},
		{"99/1", []float64{99, 1}},
	}
	const n = 100000
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg split.Config
			var sum float64
			for i, w := range tc.weights {
				cfg.Variants = append(cfg.Variants, split.Variant{Name: "v" + strconv.Itoa(i), Weight: w})
				sum += w
			}
			s := mustNew(t, cfg)
			counts := make([]int, len(tc.weights))
			var buf []byte
			for i := 0; i < n; i++ {
				buf = key(buf, i)
				counts[s.Assign(buf)]++
			}
			for i, w := range tc.weights {
				got, want := float64(counts[i])/n, w/sum
				if d := got - want; d > 0.01 || d < -0.01 {
					t.Errorf("variant %d: share %.4f, want %.4f ± 0.01", i, got, want)
				}
				t.Logf("variant %d: share %.4f (weight %.4f)", i, got, want)
			}
		})
	}
}

// TestMovingWeightsMovesFewKeys: changing 90/10 to 80/20 moves only about
// 10 % of the keys, all of them from a to b.
func TestMovingWeightsMovesFewKeys(t *testing.T) {
	cases := []struct {
		name           string
		from, to       [2]float64
		minMove, maxMv float64
	}{
		{"90/10 to 80/20", [2]float64{90, 10}, [2]float64{80, 20}, 0.09, 0.11},
		{"same weights", [2]float64{90, 10}, [2]float64{9, 1}, 0, 0},
		{"90/10 to 50/50", [2]float64{90, 10}, [2]float64{50, 50}, 0.39, 0.41},
	}
	const n = 100000
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := mustNew(t, ab(tc.from[0], tc.from[1]))
			after := mustNew(t, ab(tc.to[0], tc.to[1]))
			moved := 0
			var buf []byte
			for i := 0; i < n; i++ {
				buf = key(buf, i)
				x, y := before.Assign(buf), after.Assign(buf)
				if x != y {
					moved++
					if x != 0 || y != 1 {
						t.Fatalf("key %q moved from %d to %d; only a→b moves are needed", buf, x, y)
					}
				}
			}
			frac := float64(moved) / n
			t.Logf("%s: %.4f of %d keys moved", tc.name, frac, n)
			if frac < tc.minMove || frac > tc.maxMv {
				t.Fatalf("moved %.4f of keys, want in [%.2f, %.2f]", frac, tc.minMove, tc.maxMv)
			}
		})
	}
}

func TestQuotasAreExact(t *testing.T) {
	cases := []struct {
		name string
		w    []float64
		n    int
		want []int
	}{
		{"90/10", []float64{90, 10}, 10000, []int{9000, 1000}},
		{"thirds", []float64{1, 1, 1}, 10000, []int{3334, 3333, 3333}},
		{"zero weight gets nothing", []float64{1, 0}, 7, []int{7, 0}},
		{"remainder to largest fraction", []float64{1, 2}, 10, []int{3, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var vs []split.Variant
			for _, w := range tc.w {
				vs = append(vs, split.Variant{Weight: w})
			}
			got := split.Quotas(vs, tc.n)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Quotas = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSaltAndBuckets(t *testing.T) {
	a := mustNew(t, ab(50, 50))
	cfg := ab(50, 50)
	cfg.Salt = "experiment-2"
	b := mustNew(t, cfg)
	same := 0
	var buf []byte
	for i := 0; i < 10000; i++ {
		buf = key(buf, i)
		if bk := a.Bucket(buf); bk < 0 || bk >= split.DefaultBuckets {
			t.Fatalf("bucket %d out of range", bk)
		}
		if a.Assign(buf) == b.Assign(buf) {
			same++
		}
	}
	// Independent 50/50 experiments agree on about half of the keys.
	if same < 4500 || same > 5500 {
		t.Fatalf("salted split agrees on %d of 10000 keys, want about 5000", same)
	}
	if got := a.Variant(0).Buckets + a.Variant(1).Buckets; got != split.DefaultBuckets {
		t.Fatalf("variants own %d buckets, want %d", got, split.DefaultBuckets)
	}
}
