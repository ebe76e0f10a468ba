package telemetry

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// buckets are a histogram's upper bounds, in seconds for the exposition
// and in nanoseconds for recording (no float maths on the hot path).
type buckets struct {
	seconds []float64
	nanos   []int64
}

func newBuckets(seconds ...float64) buckets {
	b := buckets{seconds: seconds, nanos: make([]int64, len(seconds))}
	for i, s := range seconds {
		b.nanos[i] = int64(s * 1e9)
	}
	return b
}

// The bucket layouts. Request latency is unchanged (dashboards keep
// their le values). Time to first token spans a cached prompt on a fast
// card (5 ms) to a long prompt queued on a busy one (a minute); the time
// between output events spans speculative decoding (1 ms) to a stalled
// stream (5 s). vLLM's own histograms cover the engine's side with wider,
// sparser buckets (vllm/v1/metrics/loggers.py @005a810b:
// vllm:time_to_first_token_seconds 1 ms..2560 s in 22 buckets,
// vllm:time_per_output_token_seconds 10 ms..80 s in 19); these are denser
// where a gateway's requests fall.
var (
	latencyBuckets = newBuckets(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300)
	ttftBuckets    = newBuckets(.005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60)
	itlBuckets     = newBuckets(.001, .0025, .005, .0075, .01, .015, .02, .025, .03, .04, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2.5, 5)
	// A queued request waits for one request to finish somewhere on the
	// route (a few ms on a busy route of short requests) up to the queue
	// timeout (30 s by default).
	queueWaitBuckets = newBuckets(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60)
)

// histogram is a Prometheus histogram kept in atomics: one count per
// bucket (not cumulative) plus the +Inf bucket, and the sum. A scrape may
// see a count and a sum from slightly different instants; each is exact.
type histogram struct {
	b        *buckets
	counts   []atomic.Uint64 // len(b.nanos)+1
	sumNanos atomic.Uint64
}

func (h *histogram) init(b *buckets) {
	h.b = b
	h.counts = make([]atomic.Uint64, len(b.nanos)+1)
}

// observe records d (negative counts as 0).
func (h *histogram) observe(d time.Duration) {
	n := max(int64(d), 0)
	i := 0
	for i < len(h.b.nanos) && n > h.b.nanos[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(uint64(n))
}

// metric is the histogram's exposition; nil when it is empty.
func (h *histogram) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	cum := make(map[float64]uint64, len(h.b.seconds))
	var c uint64
	for i, le := range h.b.seconds {
		c += h.counts[i].Load()
		cum[le] = c
	}
	c += h.counts[len(h.b.seconds)].Load()
	if c == 0 {
		return nil
	}
	return prometheus.MustNewConstHistogram(desc, c, float64(h.sumNanos.Load())/1e9, cum, labels...)
}
