package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 4 * mib, floor: 64 * mib, base: 100, want: 1500}, // goal 4+60 = 64 MiB
		{live: 16 * mib, floor: 64 * mib, base: 100, want: 300},
		{live: 40 * mib, floor: 64 * mib, base: 100, want: 100}, // 60 % < base
		{live: 64 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 900 * mib, floor: 64 * mib, base: 100, want: 100},
		{live: 0, floor: 64 * mib, base: 100, want: 1500}, // no collection yet: 4 MiB
		{live: mib, floor: 64 * mib, base: 100, want: 1500},
		{live: 16 * mib, floor: 64 * mib, base: 400, want: 400},
		{live: 4 * mib, floor: math.MaxUint64, base: 100, want: 1 << 20},
		{live: 4 * mib, floor: 40 << 30, base: 100, want: 1023900},
		{live: 4 * mib, floor: 64 << 30, base: 100, want: 1 << 20},
	} {
		if got := Percent(c.live, c.floor, c.base); got != c.want {
			t.Errorf("Percent(%d MiB live, floor %d MiB, base %d) = %d, want %d", c.live/mib, c.floor/mib, c.base, got, c.want)
		}
	}
}

// readGC reads the collector's current percent and heap goal.
func readGC() (percent, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// tuning is one call of the floor's hook, with the collector's state
// read right after the percent was set.
type tuning struct {
	live         uint64
	set, percent int
	goal         uint64
}

// hook sends each tuning to the returned channel, dropping any the test
// is not waiting for.
func hook() (chan tuning, func(uint64, int)) {
	ch := make(chan tuning, 1)
	return ch, func(live uint64, p int) {
		percent, goal := readGC()
		select {
		case ch <- tuning{live: live, set: p, percent: int(percent), goal: goal}:
		default:
		}
	}
}

// collect runs collections until the floor reports a tuning that ok
// accepts (a collection that ran before the test's allocations may report
// first) and returns it.
func collect(t *testing.T, tuned <-chan tuning, ok func(tuning) bool) tuning {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		runtime.GC()
		select {
		case tu := <-tuned:
			if ok(tu) {
				return tu
			}
		case <-timer.C:
			t.Fatal("no tuning within 10 s")
		}
	}
}

func TestFloorRaisesGoalWhileHeapIsSmall(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 256 << 20
	ch, h := hook()
	f := start(floor, h)
	defer f.Stop()
	for i := range 3 { // each collection re-arms the next
		tu := collect(t, ch, func(tuning) bool { return true })
		if tu.set <= 100 || tu.set != tu.percent {
			t.Fatalf("tuning %d (live %d KiB): set %d, collector at %d; want one percent above 100", i, tu.live>>10, tu.set, tu.percent)
		}
		if tu.goal < floor*9/10 {
			t.Fatalf("tuning %d (live %d KiB): heap goal %d MiB, want about the floor (%d MiB)", i, tu.live>>10, tu.goal>>20, floor>>20)
		}
	}
	f.Stop()
	if percent, _ := readGC(); percent != 100 {
		t.Fatalf("after Stop the percent is %d, want the process's 100 back", percent)
	}
	runtime.GC() // a cleanup after Stop changes nothing
	if percent, _ := readGC(); percent != 100 {
		t.Fatalf("after Stop and a collection the percent is %d, want 100", percent)
	}
}

func TestFloorLeavesLargeHeapAlone(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ch, h := hook()
	f := start(8<<20, h)
	defer f.Stop()
	held := make([]byte, 64<<20) // live heap well above the floor
	for i := range held {
		held[i] = byte(i)
	}
	tu := collect(t, ch, func(tu tuning) bool { return tu.live >= 64<<20 })
	runtime.KeepAlive(held)
	if tu.set != 100 || tu.percent != 100 {
		t.Fatalf("live heap %d MiB above the 8 MiB floor: set %d, collector at %d; want the base 100", tu.live>>20, tu.set, tu.percent)
	}
}

func TestFloorCappedByMemoryLimit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
	f := Start(1 << 30)
	defer f.Stop()
	if f.floor != 16<<20 {
		t.Fatalf("floor %d MiB under a 64 MiB memory limit, want a quarter of it, 16 MiB", f.floor>>20)
	}
}

func TestFloorOffWhenGCOffOrNoFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if f := Start(0); f != nil {
		t.Fatal("Start(0) tunes; want nil")
	}
	debug.SetGCPercent(-1)
	if f := Start(64 << 20); f != nil {
		t.Fatal("Start with GOGC=off tunes; want nil")
	}
	if p := debug.SetGCPercent(100); p != -1 {
		t.Fatalf("Start changed GOGC=off to %d", p)
	}
	var f *Floor
	f.Stop() // safe on nil
}
