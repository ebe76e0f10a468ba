package balancer

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
)

// This file holds the weighted schedules: nginx's smooth weighted round
// robin, worked out once per block when a table is built, and the stride
// scheduler that picks a block.

// nginxSWRR is nginx's smooth weighted round robin over integer weights
// (ngx_http_upstream_get_peer): on each pick every node's current weight
// grows by its weight, the node with the largest current weight wins (the
// first one on a tie) and loses the total. It is the reference the blocked
// schedules are checked against, and is not safe for concurrent use.
type nginxSWRR struct {
	weights []int64
	current []int64
	total   int64
}

func newNginxSWRR(weights []int64) *nginxSWRR {
	s := &nginxSWRR{weights: weights, current: make([]int64, len(weights))}
	for _, w := range weights {
		s.total += w
	}
	return s
}

// next returns the index of the next pick, or -1 if every weight is 0.
func (s *nginxSWRR) next() int {
	best := -1
	for i, w := range s.weights {
		if w <= 0 {
			continue
		}
		s.current[i] += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= s.total
	}
	return best
}

// swrrSequence writes one full period of nginx's SWRR over the positive
// weights q into seq, which must have length sum(q). After a full period
// the current weights are all back to zero, so the period repeats exactly.
// scratch must have len(q) entries.
func swrrSequence(q []uint32, seq []uint8, scratch []int64) {
	var total int64
	for i, w := range q {
		total += int64(w)
		scratch[i] = 0
	}
	cur := scratch[:len(q)]
	for t := range seq {
		best := 0
		bestV := int64(math.MinInt64)
		for i := range cur {
			v := cur[i] + int64(q[i])
			cur[i] = v
			if v > bestV {
				best, bestV = i, v
			}
		}
		cur[best] -= total
		seq[t] = uint8(best)
	}
}

// swrrSequence8 is swrrSequence for at most 8 weights, unrolled and nearly
// branch-free: about 2.5 times faster, and the default block size is 8.
func swrrSequence8(q []uint32, seq []uint8) {
	var cur, w [8]int64
	var total int64
	n := len(q)
	for i := 0; i < 8; i++ {
		if i < n {
			w[i] = int64(q[i])
			total += w[i]
		} else {
			w[i] = 0
			cur[i] = -1 << 62
		}
	}
	for t := range seq {
		c0 := cur[0] + w[0]
		c1 := cur[1] + w[1]
		c2 := cur[2] + w[2]
		c3 := cur[3] + w[3]
		c4 := cur[4] + w[4]
		c5 := cur[5] + w[5]
		c6 := cur[6] + w[6]
		c7 := cur[7] + w[7]
		cur = [8]int64{c0, c1, c2, c3, c4, c5, c6, c7}
		// A tournament; on a tie the lower index wins, as in nginx.
		b01, v01 := 0, c0
		if c1 > c0 {
			b01, v01 = 1, c1
		}
		b23, v23 := 2, c2
		if c3 > c2 {
			b23, v23 = 3, c3
		}
		b45, v45 := 4, c4
		if c5 > c4 {
			b45, v45 = 5, c5
		}
		b67, v67 := 6, c6
		if c7 > c6 {
			b67, v67 = 7, c7
		}
		if v23 > v01 {
			b01, v01 = b23, v23
		}
		if v67 > v45 {
			b45, v45 = b67, v67
		}
		if v45 > v01 {
			b01 = b45
		}
		cur[b01] -= total
		seq[t] = uint8(b01)
	}
}

// Block schedule sizing. A block's weights become small integers whose
// sum is its SWRR period, and building a block costs period × block size.
// Integer weights are used exactly (divided by their gcd) while their
// period fits in maxIntegralPeriod, as nginx's configured weights do. Other
// weights are scaled so the block's mean node gets blockQuantum slots
// (more, up to maxFloatPeriod, when a small weight would round to less
// than minSmallSlots) and rounded at random, up or down in proportion to
// the fraction: inside one table a node's share in its block is exact to
// within one slot, and over the tables rebuilt every few seconds the
// rounding averages out (it is unbiased). The block's share of the table is
// exact to 1/65535.
const (
	maxIntegralPeriod = 4096
	maxFloatPeriod    = 128
	blockQuantum      = 8
	minSmallSlots     = 2
)

// quantize fills q with integer weights proportional to w (all positive)
// and returns their sum.
func quantize(w []float64, q []uint32) int {
	var sum, minW float64
	integral := true
	minW = math.Inf(1)
	for _, x := range w {
		sum += x
		minW = min(minW, x)
		if x != math.Trunc(x) || x > maxIntegralPeriod {
			integral = false
		}
	}
	if integral && sum <= maxIntegralPeriod {
		g := uint32(0)
		for i, x := range w {
			q[i] = uint32(x)
			g = gcd(g, q[i])
		}
		total := 0
		for i := range q {
			q[i] /= g
			total += int(q[i])
		}
		return total
	}
	n := float64(len(w))
	scale := blockQuantum * n / sum
	if minW*scale < minSmallSlots {
		scale = minSmallSlots / minW
	}
	scale = min(scale, (maxFloatPeriod-n)/sum)
	total := 0
	for i, x := range w {
		f := x * scale
		v := math.Floor(f)
		if rand.Float64() < f-v {
			v++
		}
		q[i] = uint32(max(v, 1))
		total += int(q[i])
	}
	return total
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// strideMax is the largest block weight the stride scheduler uses.
const strideMax = math.MaxUint16

// stride picks indexes in proportion to integer weights of at most
// strideMax, the way grpc-go's weighted round robin scheduler does: a
// counter walks the indexes generation by generation, and index i is taken
// in generation g when (w_i·g + offset_i) mod strideMax falls in the top
// w_i values. Over strideMax generations index i is taken exactly w_i
// times. A step is one atomic add; a pick takes O(max/mean weight) steps.
//
// The counter is sharded (the design brief's "several independent
// instances"): each pick walks one of strideShards counters, chosen by its
// goroutine (goroutineHint), each on its own cache line and started at its own random offset.
// Each shard's picks are a prefix of an exact schedule, so the shares stay
// exact to within one period per shard, while cores picking at once
// mostly write different cache lines.
type stride struct {
	weights []uint32
	ctr     [strideShards]paddedCounter
}

// strideShards is the number of stride counters; a power of two.
const strideShards = 8

// paddedCounter is an atomic counter alone on its cache line: 8 bytes
// with 56 before and 64 after, so that neither a neighbour in an array
// nor a field before the array shares its line, however the array is
// aligned. (With the padding only after, an unaligned array put two
// shards on one line and parallel picks from adjacent shards contended.)
type paddedCounter struct {
	_ [56]byte
	atomic.Uint64
	_ [64]byte
}

// newStride scales w (all positive) so the largest becomes strideMax.
func newStride(w []float64) *stride {
	var hi float64
	for _, x := range w {
		hi = max(hi, x)
	}
	s := &stride{weights: make([]uint32, len(w))}
	for i, x := range w {
		s.weights[i] = uint32(max(math.Round(x/hi*strideMax), 1))
	}
	for k := range s.ctr {
		s.ctr[k].Store(randomStart())
	}
	return s
}

// next returns the next index of shard (mod strideShards).
func (s *stride) next(shard uint64) int {
	n := uint64(len(s.weights))
	ctr := &s.ctr[shard&(strideShards-1)]
	for {
		seq := ctr.Add(1)
		i := seq % n
		w := uint64(s.weights[i])
		if (w*(seq/n)+i*(strideMax/2+1))%strideMax >= strideMax-w {
			return int(i)
		}
	}
}
