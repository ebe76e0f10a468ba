package upstream

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// BenchmarkObserveFirstByte is what the record adds to one attempt: the
// count when the exchange starts (Do, H2) and the hook after it, for an
// answer (the common case), serially and from many goroutines on one
// node. The baseline is the clock read the core does for the hook.
func BenchmarkObserveFirstByte(b *testing.B) {
	n := New("n", balancer.Address{HTTP: "127.0.0.1:9"}, &Config{MaxConns: 1})
	b.Run("baseline-clock", func(b *testing.B) {
		b.ReportAllocs()
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		_ = t
	})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sent := time.Now()
			n.fb.begin()
			n.ObserveFirstByte(sent, 200, nil)
		}
	})
	for _, p := range []int{1, 4, 16} {
		b.Run("parallel-"+itoa(p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sent := time.Now()
					n.fb.begin()
					n.ObserveFirstByte(sent, 200, nil)
				}
			})
		})
	}
	b.Run("failure", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sent := time.Now()
			n.fb.begin()
			n.ObserveFirstByte(sent, 0, ErrAborted)
		}
	})
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
