package balancer

import (
	"fmt"
	"math"
	"slices"
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
	w.Weigh(t0, nodes, make([]Observed, len(nodes)), prev, out)
	return out
}

func TestWeighersGuardEdges(t *testing.T) {
	for _, w := range []Weigher{HeadroomWeigher{}, SeedWeigher{}} {
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

func TestHeadroomWeigher(t *testing.T) {
	w := HeadroomWeigher{}
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
	b, _ := NewBuilder(Config{Weigher: HeadroomWeigher{}}, nil)
	nodes := []Node{{ID: "a", Addr: Address{HTTP: "a:1"}, Capacity: 1}, {ID: "b", Addr: Address{HTTP: "b:1"}, Capacity: 1}}
	b.Build(nodes, t0)
	nodes = append(nodes, Node{ID: "c", Addr: Address{HTTP: "c:1"}, Capacity: 1})
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

// fluid runs the weigher in a closed loop against a fluid model of a
// fleet: nodes of equal capacity and slots whose true speeds differ. Each
// round, traffic lam is split by the weights, each node's utilisation is
// its share over its true throughput (capped at 1), and the next weights
// are computed from those samples and the previous weights. It returns the
// utilisations after rounds.
func fluid(t *testing.T, w Weigher, speeds []float64, lam float64, rounds int) []float64 {
	t.Helper()
	const slots = 8.0
	nodes := make([]Node, len(speeds))
	prev := make([]float64, len(speeds))
	out := make([]float64, len(speeds))
	u := make([]float64, len(speeds))
	for i := range nodes {
		nodes[i] = Node{ID: fmt.Sprint(i), Capacity: 2}
	}
	now := t0
	for r := 0; r < rounds; r++ {
		w.Weigh(now, nodes, make([]Observed, len(nodes)), prev, out)
		var sum float64
		for _, x := range out {
			sum += x
		}
		now = now.Add(3 * time.Second)
		for i := range nodes {
			u[i] = min(lam*out[i]/sum/speeds[i], 1)
			nodes[i].Load = Load{Utilisation: u[i], Concurrency: u[i] * slots, SampledAt: now}
		}
		copy(prev, out)
	}
	return u
}

func TestHeadroomWeigherFeedbackEqualisesUtilisation(t *testing.T) {
	// Four nodes of the same capacity and slots; one really runs slower (a
	// noisy neighbour). Offered load 70 % of the fleet's true throughput.
	spread := func(u []float64) float64 { return slices.Max(u) - slices.Min(u) }
	formulaOnly := HeadroomWeigher{Config: WeightConfig{Learn: -1, AdaptStep: -1}}
	cases := []struct {
		name       string
		w          Weigher
		slow       float64
		minS, maxS float64
	}{
		// The default learns until every node is equally busy.
		{"default, half speed", HeadroomWeigher{}, 0.5, 0, 0.01},
		// The formula alone settles with the slow node far busier.
		{"formula only, half speed", formulaOnly, 0.5, 0.08, 1},
		// A third of the speed is beyond the default trust region (2) at
		// this load: the feedback narrows the gap but cannot close it...
		{"default, third speed", HeadroomWeigher{}, 1.0 / 3, 0.03, 0.15},
		{"formula only, third speed", formulaOnly, 1.0 / 3, 0.2, 1},
		// ...and with a wider trust region it can.
		{"trust 4, third speed", HeadroomWeigher{Config: WeightConfig{Trust: 4}}, 1.0 / 3, 0, 0.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			speeds := []float64{1, 1, 1, c.slow}
			u := fluid(t, c.w, speeds, 0.7*(3+c.slow), 80)
			if s := spread(u); s > c.maxS || s < c.minS {
				t.Fatalf("utilisations %v: spread %.3f, want in [%v, %v]", u, s, c.minS, c.maxS)
			}
		})
	}
}

func TestHeadroomWeigherTrustAndAdaptiveStep(t *testing.T) {
	w := HeadroomWeigher{}
	t.Run("learned weights redistribute within the trust region", func(t *testing.T) {
		// Equal headroom: the feedback keeps the previous shares, rescaled
		// to the formula's total, each held within formula ×/÷ Trust (2),
		// then the step cap.
		nodes := []Node{
			{ID: "a", Capacity: 2, Load: sample(0.5, 4, 0)},
			{ID: "b", Capacity: 2, Load: sample(0.5, 4, 0)},
			{ID: "c", Capacity: 2, Load: sample(0.5, 4, 0)},
		}
		f := 2 * 4 * logHeadroom(0.5)
		prev := []float64{3 * f, 2 * f, f}
		got := weigh(w, nodes, prev)
		// Shares 3:2:1 of a total 3f: 1.5f, f, 0.5f.
		for i, want := range []float64{1.5 * f, f, 0.5 * f} {
			if math.Abs(got[i]-want) > 1e-9 {
				t.Fatalf("weights %v, want %v", got, []float64{1.5 * f, f, 0.5 * f})
			}
		}
		got = weigh(w, nodes, []float64{1000 * f, f, f})
		// Rescaled: ≈3f, 0.003f, 0.003f; held to 2f max and f/2 min, then
		// ÷2 at most from the previous weights (1000f → 500f).
		if got[0] != 500*f || math.Abs(got[1]-f/2) > 1e-9 {
			t.Fatalf("weights %v, want %v, %v", got, 500*f, f/2)
		}
	})
	t.Run("an idle node regains weight faster than MaxStep", func(t *testing.T) {
		nodes := []Node{
			{ID: "back", Capacity: 2, Load: sample(0.05, 0.4, 0)},
			{ID: "busy1", Capacity: 2, Load: sample(0.9, 7.2, 0)},
			{ID: "busy2", Capacity: 2, Load: sample(0.9, 7.2, 0)},
		}
		got := weigh(w, nodes, []float64{0.5, 8, 8})
		if !(got[0] > 2*0.5) {
			t.Fatalf("recovering node went from 0.5 to %v: no faster than MaxStep", got[0])
		}
		if got[0] > 0.5*2*4 {
			t.Fatalf("recovering node went from 0.5 to %v: past MaxStep × AdaptStep", got[0])
		}
		// The same node under the formula-only weigher moves at MaxStep.
		old := weigh(HeadroomWeigher{Config: WeightConfig{Learn: -1, AdaptStep: -1}}, nodes, []float64{0.5, 8, 8})
		if old[0] != 1 {
			t.Fatalf("formula-only step %v, want 1", old[0])
		}
	})
	t.Run("slow start does not learn", func(t *testing.T) {
		nodes := []Node{
			{ID: "new", Capacity: 2, Load: sample(0.5, 4, 0), Since: t0.Add(-15 * time.Second)},
			{ID: "old", Capacity: 2, Load: sample(0.5, 4, 0)},
		}
		got := weigh(w, nodes, []float64{100, 1})
		// Ramp 0.55 of the formula, then the ordinary ÷2 cap from 100.
		if got[0] != 50 {
			t.Fatalf("slow-starting node %v, want 50", got[0])
		}
	})
}

// FuzzHeadroomWeigher feeds the weighers arbitrary samples and previous
// weights (NaN, infinite, negative, huge) over several rounds: every Ready
// node gets a positive finite weight, every other node 0.
func FuzzHeadroomWeigher(f *testing.F) {
	f.Add([]byte{4, 10, 50, 30, 1, 200, 90, 70, 2, 0, 255, 255, 3})
	f.Add([]byte{8, 0, 0, 0, 0, 255, 255, 255, 255, 100, 100, 8, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 || len(data) > 2048 {
			return
		}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		n := int(next()%32) + 1
		nodes := make([]Node, n)
		prev := make([]float64, n)
		out := make([]float64, n)
		specials := []float64{0, math.NaN(), math.Inf(1), math.Inf(-1), -3, 1e300, 5e-324}
		weighers := []Weigher{HeadroomWeigher{}, HeadroomWeigher{Config: WeightConfig{Learn: 3, Trust: 0.5, AdaptStep: 100}}, SeedWeigher{}, ThroughputWeigher{}}
		for round := 0; round < 3; round++ {
			for i := range nodes {
				c, u, k, flags := next(), next(), next(), next()
				nodes[i] = Node{ID: fmt.Sprint(i), Capacity: float64(c) / 16, State: State(flags % 4),
					Load:  Load{Utilisation: float64(u)/200 - 0.1, Concurrency: float64(k)/4 - 2, SampledAt: t0.Add(-time.Duration(flags>>2) * time.Second)},
					Since: t0.Add(-time.Duration(flags>>3) * 2 * time.Second)}
				if flags&0x40 != 0 {
					prev[i] = specials[int(k)%len(specials)]
				}
			}
			obs := make([]Observed, n)
			for i := range obs {
				d, b := next(), next()
				obs[i] = Observed{Completed: float64(d) * 3, Busy: float64(b) / 8}
				if d == 255 {
					obs[i].Completed = specials[int(b)%len(specials)]
				}
			}
			w := weighers[int(next())%len(weighers)]
			w.Weigh(t0, nodes, obs, prev, out)
			for i, x := range out {
				if nodes[i].State != Ready {
					if x != 0 {
						t.Fatalf("%T: non-ready node %d weight %v", w, i, x)
					}
					continue
				}
				if !(x > 0) || math.IsInf(x, 0) || math.IsNaN(x) {
					t.Fatalf("%T: node %+v prev %v: weight %v", w, nodes[i], prev[i], x)
				}
			}
			copy(prev, out)
		}
	})
}
