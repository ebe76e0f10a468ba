package balancer

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSequence8MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := 0; trial < 2000; trial++ {
		n := 1 + rng.IntN(8)
		q := make([]uint32, n)
		total := 0
		for i := range q {
			q[i] = uint32(1 + rng.IntN(40))
			if trial%3 == 0 {
				q[i] = uint32(1 + rng.IntN(3)) // many ties
			}
			total += int(q[i])
		}
		want := make([]uint8, total)
		got := make([]uint8, total)
		swrrSequence(q, want, make([]int64, n))
		swrrSequence8(q, got)
		if string(got) != string(want) {
			t.Fatalf("weights %v: unrolled sequence %v, reference %v", q, got, want)
		}
	}
}

func BenchmarkSequence(b *testing.B) {
	q := []uint32{30, 1, 2, 17, 9, 40, 3, 26}
	seq := make([]uint8, 128)
	b.Run("generic", func(b *testing.B) {
		scratch := make([]int64, 8)
		b.ReportAllocs()
		for b.Loop() {
			swrrSequence(q, seq, scratch)
		}
	})
	b.Run("unrolled8", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			swrrSequence8(q, seq)
		}
	})
}

// TestQuantizeUnbiased: float weights round up or down at random, so over
// many rebuilds each node's slots average to its exact weight (within
// 0.5 %), while integer weights are kept exactly.
func TestQuantizeUnbiased(t *testing.T) {
	w := []float64{0.37, 5.5, 2.25, 9.1, 1.0, 3.3333, 7.77, 0.9}
	var sum float64
	for _, x := range w {
		sum += x
	}
	n := float64(len(w))
	scale := blockQuantum * n / sum
	if minW := 0.37; minW*scale < minSmallSlots {
		scale = minSmallSlots / minW
	}
	scale = min(scale, (maxFloatPeriod-n)/sum)
	q := make([]uint32, len(w))
	avg := make([]float64, len(w))
	const rounds = 100_000
	for r := 0; r < rounds; r++ {
		quantize(w, q)
		for i, v := range q {
			avg[i] += float64(v) / rounds
		}
	}
	for i, x := range w {
		want := x * scale
		if want < 1 { // no node gets less than one slot
			want = 1
		}
		if math.Abs(avg[i]-want) > 0.005*want {
			t.Errorf("weight %v: mean slots %.4f, want %.4f", x, avg[i], want)
		}
	}
	ints := []float64{5, 1, 1}
	if n := quantize(ints, q[:3]); n != 7 || q[0] != 5 || q[1] != 1 || q[2] != 1 {
		t.Fatalf("integer weights were not kept: %v (period %d)", q[:3], n)
	}
	if n := quantize([]float64{10, 20, 30}, q[:3]); n != 6 {
		t.Fatalf("integer weights were not divided by their gcd: %v", q[:3])
	}
}
