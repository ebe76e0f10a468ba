package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIndexBoundsRoundTrip(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1 << 20, 123456789, 1<<40 + 12345, math.MaxInt64}
	for _, v := range vals {
		i := index(v)
		lo, hi := bounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d: bucket %d holds [%d, %d]", v, i, lo, hi)
		}
		if v >= linear && float64(hi-lo+1) > float64(lo)/subCount+1 {
			t.Errorf("value %d: bucket [%d, %d] wider than 1/128 of its value", v, lo, hi)
		}
		if i >= buckets {
			t.Errorf("value %d: index %d out of range %d", v, i, buckets)
		}
	}
	// Buckets tile the number line: each starts right after the previous.
	for i := 1; i < 40*subCount; i++ {
		_, prevHi := bounds(i - 1)
		lo, _ := bounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

// exact returns the ⌈q·n⌉-th smallest value of sorted s.
func exact(s []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(s))))
	r = min(max(r, 1), len(s))
	return s[r-1]
}

func TestQuantileVersusSortedReference(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) int64
		n    int
	}{
		{"uniform-small", func(r *rand.Rand) int64 { return r.Int64N(300) }, 1000},
		{"exponential-ms", func(r *rand.Rand) int64 { return int64(r.ExpFloat64() * 1e6) }, 50000},
		{"lognormal-wide", func(r *rand.Rand) int64 { return int64(math.Exp(r.NormFloat64()*3 + 10)) }, 20000},
		{"constant", func(*rand.Rand) int64 { return 4242 }, 100},
		{"single", func(*rand.Rand) int64 { return 99999 }, 1},
	}
	qs := []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			vals := make([]int64, c.n)
			for i := range vals {
				vals[i] = c.gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(c.n) || h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
				t.Fatalf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), c.n, vals[0], vals[len(vals)-1])
			}
			for _, q := range qs {
				got, want := h.Quantile(q), exact(vals, q)
				if got < want || float64(got-want) > float64(want)/subCount+1 {
					t.Errorf("q%v = %d, exact %d (allowed [%d, %d])", q, got, want, want, want+want/subCount+1)
				}
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if m := sum / float64(len(vals)); math.Abs(h.Mean()-m) > 1e-6*m+1e-9 {
				t.Errorf("mean %v, want %v", h.Mean(), m)
			}
		})
	}
}

func TestRecordCorrected(t *testing.T) {
	// HdrHistogram's canonical example: a closed-loop client sends every
	// 1 ms (here: unit 1 = 1 µs, interval 1000) and sees 10,000 fast
	// responses of 1 ms, then one 100 ms stall. Uncorrected, the stall is
	// one sample in 10,001; corrected, the 99 requests the client would
	// have sent during it are recorded at 99 ms, 98 ms, … 1 ms.
	var raw, cor Histogram
	for i := 0; i < 10000; i++ {
		raw.Record(1000)
		cor.RecordCorrected(1000, 1000)
	}
	raw.Record(100000)
	cor.RecordCorrected(100000, 1000)
	if raw.Count() != 10001 {
		t.Fatalf("raw count %d", raw.Count())
	}
	if cor.Count() != 10001+99 {
		t.Fatalf("corrected count %d, want %d", cor.Count(), 10001+99)
	}
	if got := raw.Quantile(0.99); got < 1000 || got > 1000+1000/subCount {
		t.Errorf("raw p99 = %d, want ~1000", got)
	}
	// Corrected, sorted: 10,001 values of 1 ms (the 10,000 fast ones and
	// the last corrected one), then 2, 3, …, 99 and 100 ms. p99.5 is rank
	// ⌈0.995·10100⌉ = 10050, the 49th value after the 1 ms run: 50 ms.
	want := int64(50000)
	if got := cor.Quantile(0.995); got < want || got > want+want/subCount {
		t.Errorf("corrected p99.5 = %d, want ~%d", got, want)
	}
	if cor.Max() != 100000 {
		t.Errorf("corrected max %d", cor.Max())
	}
	var none Histogram
	none.RecordCorrected(5000, 0)
	if none.Count() != 1 {
		t.Errorf("interval 0 recorded %d values", none.Count())
	}
}

func TestMergeAndEmpty(t *testing.T) {
	var a, b, e Histogram
	if e.Quantile(0.5) != 0 || e.Mean() != 0 {
		t.Fatal("empty histogram not zero")
	}
	for i := int64(1); i <= 100; i++ {
		a.Record(i)
		b.Record(i + 100)
	}
	a.Merge(&b)
	a.Merge(&e)
	if a.Count() != 200 || a.Min() != 1 || a.Max() != 200 || a.Quantile(0.5) != 100 {
		t.Fatalf("merged: count %d min %d max %d p50 %d", a.Count(), a.Min(), a.Max(), a.Quantile(0.5))
	}
	a.Record(-5)
	if a.Min() != 0 {
		t.Errorf("negative value not clamped: min %d", a.Min())
	}
	var n int
	for _, bk := range a.Buckets() {
		n += int(bk.Count)
	}
	if n != 201 {
		t.Errorf("buckets sum %d", n)
	}
}
