package flow

import (
	"context"
	"testing"
)

// BenchmarkEnterLeave is the common path: room on the route, nothing
// waiting (one compare-and-swap each way).
func BenchmarkEnterLeave(b *testing.B) {
	q, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	q.SetLimit(1 << 20)
	ctx := context.Background()
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := q.Enter(ctx, Request{}); err != nil {
				b.Fatal(err)
			}
			q.Leave(Interactive)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := q.Enter(ctx, Request{}); err != nil {
					b.Error(err)
					return
				}
				q.Leave(Interactive)
			}
		})
	})
}

// BenchmarkQueuedHandOff is a saturated route: every Enter waits and gets
// the slot of a Leave (two goroutines per slot, 4 slots).
func BenchmarkQueuedHandOff(b *testing.B) {
	q, err := New(Config{MaxQueued: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	q.SetLimit(4)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Enter(ctx, Request{Class: Batch, Tenant: "t"}); err != nil {
				b.Error(err)
				return
			}
			q.Leave(Batch)
		}
	})
}

// BenchmarkFair pushes and pops through 64 tenants in two classes.
func BenchmarkFair(b *testing.B) {
	f := NewFair[int](1)
	names := make([]string, 64)
	for i := range names {
		names[i] = string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	for i := 0; i < 1024; i++ {
		f.Push(Class(i%2), names[i%64], 1, i)
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		f.Pop()
		f.Push(Class(k%2), names[k%64], 1, k)
		k++
	}
}
