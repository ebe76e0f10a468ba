// Package hist is a small log-linear latency histogram in the style of
// HdrHistogram: values (nanoseconds, or any non-negative integer) fall into
// buckets whose width is at most 1/128 of their value, so every percentile
// it reports is within 0.8 % of the exact one, at a fixed 57 KB per
// histogram and O(1) per record.
//
// It also does HdrHistogram's coordinated-omission correction for closed
// loop measurements (RecordCorrected). Open-loop load generators avoid the
// omission at the source instead, by measuring from the intended send time.
//
// A Histogram is not safe for concurrent use: give each worker its own and
// Merge them at the end.
package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits  = 7
	subCount = 1 << subBits // sub-buckets per power of two
	// linear is the range recorded exactly: values below it have their own
	// bucket.
	linear  = 2 * subCount
	buckets = (64-subBits-1)*subCount + linear
)

// Histogram counts values in log-linear buckets. The zero value is empty
// and ready to use. It must not be copied after first use if shared by
// pointer; copying a value copies its counts.
type Histogram struct {
	counts [buckets]uint64
	total  uint64
	sum    float64
	min    uint64
	max    uint64
}

// index returns the bucket of v.
func index(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return shift*subCount + int(v>>uint(shift))
}

// bounds returns the smallest and largest value of bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < linear {
		return uint64(i), uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i - shift*subCount)
	lo = m << uint(shift)
	return lo, lo + (1 << uint(shift)) - 1
}

// Record adds one value. Negative values count as 0.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN adds n copies of v.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	u := uint64(max(v, 0))
	h.counts[index(u)] += n
	if h.total == 0 || u < h.min {
		h.min = u
	}
	if u > h.max {
		h.max = u
	}
	h.total += n
	h.sum += float64(u) * float64(n)
}

// RecordDuration adds d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// RecordCorrected adds v and, as HdrHistogram's recordValueWithExpectedInterval
// does, the values a closed-loop client would have seen had it kept sending
// every interval while it waited: v−interval, v−2·interval, … down to
// interval. interval <= 0 records v alone.
func (h *Histogram) RecordCorrected(v, interval int64) {
	h.Record(v)
	if interval <= 0 {
		return
	}
	for missing := v - interval; missing >= interval; missing -= interval {
		h.Record(missing)
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest value recorded (0 if none).
func (h *Histogram) Min() int64 { return int64(h.min) }

// Max returns the largest value recorded (0 if none).
func (h *Histogram) Max() int64 { return int64(h.max) }

// Mean returns the exact mean of the values recorded (0 if none).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0..1): the largest value of the
// bucket holding the ⌈q·count⌉-th smallest value, clamped to the recorded
// min and max, so it is never below the exact answer and at most 1/128
// above it. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if math.IsNaN(q) || q <= 0 {
		return int64(h.min)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			_, hi := bounds(i)
			return int64(min(max(hi, h.min), h.max))
		}
	}
	return int64(h.max)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Bucket is one non-empty bucket: values in [Lo, Hi] were seen Count times.
type Bucket struct {
	Lo, Hi int64
	Count  uint64
}

// Buckets returns the non-empty buckets in increasing order, for CDF plots.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.counts {
		if c != 0 {
			lo, hi := bounds(i)
			out = append(out, Bucket{int64(lo), int64(hi), c})
		}
	}
	return out
}
