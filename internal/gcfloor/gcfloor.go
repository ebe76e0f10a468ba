// Package gcfloor keeps the Go collector's heap goal at or above a floor.
//
// With the default GOGC=100 the collector runs each time the heap doubles
// its live size. A proxy's live heap is small (a few MiB when idle or
// serving short requests), so it collects every few MiB allocated: under
// HTTP/2 and gRPC load, where net/http allocates about a hundred objects
// per stream, that was 6 to 13 % of the gateway's CPU. A Floor raises the
// GC percent while the live heap is small, so that the next collection
// starts no earlier than at the floor, and gives it back (the process's
// own percent) once the live heap alone is large enough: a gateway holding
// thousands of streams pays no more memory per stream than before.
//
// This is the "GOGC tuner" of Uber and others, kept small. The process's
// memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still applies and wins
// over the floor, and the floor is capped to a quarter of that limit.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Floor tunes the GC percent after every collection until Stop.
type Floor struct {
	floor uint64 // bytes, immutable
	base  int    // the percent the process had at Start, immutable

	mu      sync.Mutex // guards the fields below, and every SetGCPercent
	stopped bool
	percent int              // the percent last set
	samples []metrics.Sample // live heap
	tuned   func(live uint64, percent int)
}

// sentinel is allocated for one collection: its cleanup runs after the
// collection that found it unreachable. It is larger than the tiny
// allocator's 16-byte blocks, so it is freed on its own.
type sentinel struct{ _ [32]byte }

// Start keeps the heap goal at least floor bytes (capped to a quarter of
// the process's memory limit) until Stop. It returns nil, and changes
// nothing, when floor is 0 or the collector is off (GOGC=off).
func Start(floor uint64) *Floor { return start(floor, nil) }

// start is Start with a hook called, under the lock, with the live heap
// and the percent set after each collection (tests wait on it).
func start(floor uint64, tuned func(live uint64, percent int)) *Floor {
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit != math.MaxInt64 {
		floor = min(floor, uint64(limit)/4)
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return nil
	}
	f := &Floor{
		floor:   floor,
		base:    base,
		percent: base,
		samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
		tuned:   tuned,
	}
	f.arm()
	f.mu.Lock()
	f.tuneLocked()
	f.mu.Unlock()
	return f
}

// arm registers the cleanup that tunes after the next collection. It
// runs before each tuning, so that a collection started after a tuning
// (a test's runtime.GC, once its hook saw the tuning) always finds the
// next sentinel unreachable: one allocated during that collection's
// mark phase would survive it, and no tuning would follow.
func (f *Floor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *Floor) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stopped {
			return
		}
		f.arm()
		f.tuneLocked()
	}, f)
}

// tuneLocked sets the percent for the live heap the last collection left.
func (f *Floor) tuneLocked() {
	metrics.Read(f.samples)
	var live uint64
	if f.samples[0].Value.Kind() == metrics.KindUint64 {
		live = f.samples[0].Value.Uint64()
	}
	p := Percent(live, f.floor, f.base)
	if p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	if f.tuned != nil {
		f.tuned(live, p)
	}
}

// Percent is the GC percent that puts the next heap goal, live bytes plus
// that percent of them, at the floor, and never below base. A live heap
// under 4 MiB (and none, before the first collection) counts as 4 MiB:
// the runtime's minimum heap goal is 4 MiB times the percent over 100,
// so the goal then stays within 4 MiB of the floor instead of the floor
// times live over 4 MiB.
func Percent(live, floor uint64, base int) int {
	const minHeap = 4 << 20 // the runtime's defaultHeapMinimum
	const most = 1 << 20    // past any sensible floor: 40 GiB over 4 MiB
	live = max(live, minHeap)
	if live >= floor {
		return base
	}
	if floor/live >= most/100 {
		return most
	}
	return max(base, int((floor-live)*100/live))
}

// Stop ends the tuning and gives the process its percent back. It is safe
// to call on a nil Floor and more than once.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(f.base)
	f.percent = f.base
}
