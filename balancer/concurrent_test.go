package balancer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentPicksAndSwaps: readers pick from an atomic.Pointer[Table]
// while the owner rebuilds and swaps tables and breakers open and close.
// Run under -race; readers must never see an excluded or draining node.
func TestConcurrentPicksAndSwaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	b, err := NewBuilder(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes := loadedNodes(200, 8)
	var cur atomic.Pointer[Table]
	cur.Store(b.Build(nodes, t0))
	var bad atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				tb := cur.Load()
				e, err := tb.Pick(0)
				if err != nil {
					bad.Add(1)
					continue
				}
				e.Acquire()
				if e.ID() == nodes[0].ID { // always draining after the first swap
					if tb.Version() > 1 {
						bad.Add(1)
					}
				}
				e.Release()
			}
		}()
	}
	now := t0
	for i := 0; ctx.Err() == nil; i++ {
		now = now.Add(3 * time.Second)
		nodes[0].State = Draining
		tb := b.Build(nodes, now)
		tb.Endpoint(i % tb.Len()).Exclude(ExcludeBreaker)
		tb.Endpoint((i + 100) % tb.Len()).Include(ExcludeBreaker)
		cur.Store(tb)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad picks", bad.Load())
	}
	if got := b.Registry().InFlight(); got != 0 {
		t.Fatalf("in-flight %d after all releases", got)
	}
}
