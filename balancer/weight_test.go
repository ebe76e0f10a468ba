package balancer

import (
	"math"
	"testing"
	"time"
)

func sample(u, c float64, age time.Duration) Load {
	return Load{Utilisation: u, Concurrency: c, SampledAt: t0.Add(-age)}
}

func weigh(w Weigher, nodes []Node, prev []float64) []float64 {
	if prev == nil {
		prev = make([]float64, len(nodes))
	}
	out := make([]float64, len(nodes))
	w.Weigh(t0, nodes, prev, out)
	return out
}

func TestWeighersGuardEdges(t *testing.T) {
	for _, w := range []Weigher{DynamicWeigher{}, SeedWeigher{}} {
		cases := []struct {
			name string
			load Load
		}{
			{"idle utilisation 0", sample(0, 0, 0)},
			{"idle concurrency 0", sample(0.3, 0, 0)},
			{"saturated", sample(1, 8, 0)},
			{"over 100 percent", sample(7.3, 8, 0)},
			{"negative", sample(-1, -3, 0)},
			{"NaN", sample(math.NaN(), math.NaN(), 0)},
			{"infinite concurrency", sample(0.5, math.Inf(1), 0)},
			{"stale", sample(0.99, 8, time.Hour)},
			{"never sampled", Load{}},
			{"from the future", sample(0.5, 4, -time.Hour)},
		}
		for _, c := range cases {
			nodes := []Node{
				{ID: "x", Capacity: 4, Load: c.load},
				{ID: "ref", Capacity: 4, Load: sample(0.5, 4, 0)},
			}
			got := weigh(w, nodes, nil)[0]
			if !(got > 0) || math.IsInf(got, 0) {
				t.Errorf("%T %s: weight %v, want positive and finite", w, c.name, got)
			}
		}
	}
}

func TestDynamicWeigher(t *testing.T) {
	w := DynamicWeigher{}
	t.Run("headroom wins", func(t *testing.T) {
		// Same speed (4 slots per unit of capacity), different load.
		got := weigh(w, []Node{
			{ID: "busy", Capacity: 2, Load: sample(0.9, 7.2, 0)},
			{ID: "calm", Capacity: 2, Load: sample(0.2, 1.6, 0)},
		}, nil)
		if !(got[1] > got[0]) {
			t.Fatalf("calm node %v should outweigh busy node %v", got[1], got[0])
		}
	})
	t.Run("capacity counts", func(t *testing.T) {
		got := weigh(w, []Node{
			{ID: "h100", Capacity: 8, Load: sample(0.5, 16, 0)},
			{ID: "a10", Capacity: 2, Load: sample(0.5, 4, 0)},
		}, nil)
		if r := got[0] / got[1]; math.Abs(r-4) > 1e-9 {
			t.Fatalf("equally loaded nodes of capacity 8 and 2: ratio %v, want 4", r)
		}
	})
	t.Run("faster node wins", func(t *testing.T) {
		// Same capacity and utilisation, but one runs twice the requests
		// for it: it really is faster.
		got := weigh(w, []Node{
			{ID: "fast", Capacity: 2, Load: sample(0.5, 8, 0)},
			{ID: "slow", Capacity: 2, Load: sample(0.5, 4, 0)},
		}, nil)
		if r := got[0] / got[1]; math.Abs(r-2) > 1e-9 {
			t.Fatalf("speed ratio %v, want 2", r)
		}
	})
	t.Run("stale falls back to capacity", func(t *testing.T) {
		got := weigh(w, []Node{
			{ID: "stale", Capacity: 2, Load: sample(0.99, 8, time.Minute)},
			{ID: "fresh", Capacity: 2, Load: sample(0.5, 4, 0)},
			{ID: "idle", Capacity: 2, Load: sample(0, 0, 0)},
		}, nil)
		// Mean speed is 4 slots per capacity; a stale node gets capacity ×
		// mean speed, the same as an idle fresh one.
		if math.Abs(got[0]-8) > 1e-9 || math.Abs(got[2]-8) > 1e-9 {
			t.Fatalf("stale %v and idle %v, want 8 (capacity × mean speed)", got[0], got[2])
		}
	})
	t.Run("saturated keeps the floor", func(t *testing.T) {
		got := weigh(w, []Node{
			{ID: "full", Capacity: 2, Load: sample(1, 8, 0)},
			{ID: "ok", Capacity: 2, Load: sample(0.5, 4, 0)},
		}, nil)
		floor := 0.02 * 2 * 4
		if math.Abs(got[0]-floor) > 1e-9 {
			t.Fatalf("saturated weight %v, want the floor %v", got[0], floor)
		}
	})
	t.Run("step cap", func(t *testing.T) {
		nodes := []Node{
			{ID: "a", Capacity: 2, Load: sample(0.1, 0.8, 0)},
			{ID: "b", Capacity: 2, Load: sample(0.1, 0.8, 0)},
		}
		got := weigh(w, nodes, []float64{0.5, 100})
		if got[0] != 1 || got[1] != 50 {
			t.Fatalf("weights %v: want at most ×2 up (1) and ÷2 down (50)", got)
		}
	})
	t.Run("slow start", func(t *testing.T) {
		nodes := []Node{
			{ID: "new", Capacity: 2, Load: sample(0, 0, 0), Since: t0},
			{ID: "half", Capacity: 2, Load: sample(0, 0, 0), Since: t0.Add(-15 * time.Second)},
			{ID: "old", Capacity: 2, Load: sample(0, 0, 0)},
		}
		got := weigh(w, nodes, nil)
		if r := got[0] / got[2]; math.Abs(r-0.1) > 1e-9 {
			t.Fatalf("brand-new node at %v of full weight, want 0.1", r)
		}
		if r := got[1] / got[2]; math.Abs(r-0.55) > 1e-9 {
			t.Fatalf("half-way node at %v of full weight, want 0.55", r)
		}
	})
	t.Run("not ready", func(t *testing.T) {
		got := weigh(w, []Node{{ID: "d", State: Draining, Capacity: 4}, {ID: "o", State: Offline}}, nil)
		if got[0] != 0 || got[1] != 0 {
			t.Fatalf("non-ready weights %v", got)
		}
	})
}

func TestSeedWeigherLiteral(t *testing.T) {
	// capacity × ln(100·(1−u)) × u/c, read literally.
	got := weigh(SeedWeigher{}, []Node{{ID: "a", Capacity: 2, Load: sample(0.5, 4, 0)}}, nil)
	want := 2 * math.Log(50) * 0.5 / 4
	if math.Abs(got[0]-want) > 1e-12 {
		t.Fatalf("seed weight %v, want %v", got[0], want)
	}
}

func TestSlowStartThroughBuilder(t *testing.T) {
	b, _ := NewBuilder(Config{Weigher: DynamicWeigher{}}, nil)
	nodes := []Node{{ID: "a", Addr: "a:1", Capacity: 1}, {ID: "b", Addr: "b:1", Capacity: 1}}
	b.Build(nodes, t0)
	nodes = append(nodes, Node{ID: "c", Addr: "c:1", Capacity: 1})
	tb := b.Build(nodes, t0.Add(time.Second))
	wa, wc := tb.Weight(indexOf(tb, "a")), tb.Weight(indexOf(tb, "c"))
	if !(wc < 0.2*wa) {
		t.Fatalf("a node that joined after the first table is not slow-started: %v vs %v", wc, wa)
	}
	// Rebuilt every 3 s, as the gateway does, the ramp completes within
	// the slow-start window despite the step cap.
	for at := 4 * time.Second; at <= 34*time.Second; at += 3 * time.Second {
		tb = b.Build(nodes, t0.Add(at))
	}
	wa, wc = tb.Weight(indexOf(tb, "a")), tb.Weight(indexOf(tb, "c"))
	if wc != wa {
		t.Fatalf("after the ramp: %v vs %v", wc, wa)
	}
}
