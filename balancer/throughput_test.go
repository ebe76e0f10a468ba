package balancer

import (
	"math"
	"testing"
	"time"
)

// TestThroughputWeigherEdges: with nothing observed a node weighs its
// capacity; a node without a fresh sample falls back to capacity whatever
// was observed; nodes that are not ready weigh 0.
func TestThroughputWeigherEdges(t *testing.T) {
	nodes := []Node{
		{ID: "a", Capacity: 2, Load: Load{Utilisation: 0.5, Concurrency: 4, SampledAt: t0}},
		{ID: "b", Capacity: 1, Load: Load{Utilisation: 0.5, Concurrency: 4, SampledAt: t0.Add(-time.Minute)}}, // stale
		{ID: "c", Capacity: 1, State: Draining},
		{ID: "d", Capacity: 1},
	}
	w := ThroughputWeigher{}
	out := make([]float64, len(nodes))
	prev := make([]float64, len(nodes))

	w.Weigh(t0, nodes, make([]Observed, len(nodes)), prev, out)
	if out[0] != 2 || out[1] != 1 || out[2] != 0 || out[3] != 1 {
		t.Fatalf("nothing observed: weights %v, want capacities [2 1 0 1]", out)
	}

	// b was seen completing requests very slowly, but its sample is stale.
	obs := []Observed{{Completed: 100, Busy: 50}, {Completed: 1, Busy: 50}, {}, {}}
	w.Weigh(t0, nodes, obs, prev, out)
	if out[1] != 1 {
		t.Errorf("stale sample: weight %v, want the capacity 1", out[1])
	}
	for i, x := range out {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			t.Errorf("node %d: weight %v", i, x)
		}
	}
}

// TestThroughputWeigherLearnsSpeed drives a Builder the way a gateway
// does: every 3 s each node reports its utilisation and the gateway
// completes requests on it. Node "slow" has the capacity of the others but
// completes half as many requests per busy second (a noisy neighbour); its
// weight must fall toward half of theirs, and come back when it recovers.
// Releases (failures, overload answers) must not count as completions.
//
// With the default 20 s busy-time prior the estimate is shrunk toward the
// capacity: at 60 % busy the decayed busy time settles near 27 s, so the
// slow node's weight settles near (134 + 20ρ)/(268 + 20ρ) ≈ 0.70 of the
// others' (ρ ≈ 8.7 completions per busy second here); without the prior
// it is the measured 0.5.
func TestThroughputWeigherLearnsSpeed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		w        ThroughputWeigher
		slowLo   float64
		slowHi   float64
		slowWant float64
	}{
		{"default", ThroughputWeigher{}, 0.65, 0.75, 0.70},
		{"no busy prior", ThroughputWeigher{PriorBusy: -1}, 0.45, 0.55, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBuilder(Config{Weigher: tc.w}, nil)
			if err != nil {
				t.Fatal(err)
			}
			nodes := staticNodes(1, 1, 1, 1)
			nodes[3].ID = "slow"
			const dt = 3 * time.Second
			now := t0
			var tb *Table
			run := func(rounds int, slowRate float64) {
				for r := 0; r < rounds; r++ {
					for i := range nodes {
						nodes[i].Load = Load{Utilisation: 0.6, Concurrency: 6, SampledAt: now}
					}
					tb = b.Build(nodes, now)
					// In the next 3 s at 60 % busy, a node completes 10
					// requests per busy second: 18; the slow one slowRate
					// of that.
					for i := 0; i < tb.Len(); i++ {
						e := tb.Endpoint(i)
						n := 18
						if tb.Node(i).ID == "slow" {
							n = int(18 * slowRate)
						}
						for k := 0; k < n; k++ {
							e.Acquire()
							e.Complete()
						}
						for k := 0; k < 5; k++ { // failures: not completions
							e.Acquire()
							e.Release()
						}
					}
					now = now.Add(dt)
				}
			}
			ratio := func() float64 {
				return tb.Weight(indexOf(tb, "slow")) / tb.Weight(indexOf(tb, "n0"))
			}
			run(1, 1)
			if r := ratio(); r != 1 {
				t.Fatalf("first table: slow/normal weight %v, want 1 (nothing observed yet)", r)
			}
			run(60, 0.5) // three minutes
			if r := ratio(); r < tc.slowLo || r > tc.slowHi {
				t.Errorf("after 3 min at half speed: slow/normal weight %.3f, want about %.2f", r, tc.slowWant)
			}
			run(60, 1)
			if r := ratio(); r < 0.9 || r > 1.1 {
				t.Errorf("3 min after recovering: slow/normal weight %.3f, want about 1", r)
			}
			if got := b.Registry().InFlight(); got != 0 {
				t.Errorf("in flight after every request ended: %d", got)
			}
		})
	}
}

// TestObservePausesAndReusedSlots: a long gap between builds adds nothing
// (the utilisation sample says little about it), and a node that gets a
// reused slot does not inherit the completions counted on it before.
func TestObservePausesAndReusedSlots(t *testing.T) {
	b, _ := NewBuilder(Config{}, nil)
	nodes := staticNodes(1)
	nodes[0].Load = Load{Utilisation: 1, Concurrency: 1, SampledAt: t0}
	tb := b.Build(nodes, t0)
	e := tb.Endpoint(0)
	e.Acquire()
	e.Complete()
	nodes[0].Load.SampledAt = t0.Add(2 * time.Hour)
	b.Build(nodes, t0.Add(2*time.Hour))
	if e.obs != (Observed{}) {
		t.Errorf("after a 2 h pause: observed %+v, want nothing", e.obs)
	}
	nodes[0].Load.SampledAt = t0.Add(2*time.Hour + 3*time.Second)
	e.Acquire()
	e.Complete()
	b.Build(nodes, t0.Add(2*time.Hour+3*time.Second))
	if e.obs.Completed != 1 || e.obs.Busy != 3 {
		t.Errorf("3 s fully busy with one completion: observed %+v, want {1 3}", e.obs)
	}

	// n0 leaves; after the quarantine its slot goes to a new node.
	later := t0.Add(3 * time.Hour)
	b.Build(staticNodes(), later)
	fresh := []Node{{ID: "new", Addr: Address{HTTP: "n:1"}, Capacity: 1}}
	tb = b.Build(fresh, later.Add(2*time.Minute))
	ne := tb.Endpoint(0)
	if ne.live != e.live {
		t.Skip("slot not reused; nothing to check")
	}
	fresh[0].Load = Load{Utilisation: 0.5, Concurrency: 1, SampledAt: later.Add(2*time.Minute + 3*time.Second)}
	b.Build(fresh, later.Add(2*time.Minute+3*time.Second))
	if ne.obs.Completed != 0 {
		t.Errorf("a reused slot carried %v completions to its new node", ne.obs.Completed)
	}
}

// TestThroughputWeigherRange: a node whose agent reports almost no
// utilisation while it completes as many requests as its peers would seem
// 50 times faster; the learned weight stops at Range × capacity. A node
// reporting utilisation 0 adds nothing to what is observed.
func TestThroughputWeigherRange(t *testing.T) {
	// No busy-time prior, which would itself damp the misreport.
	b, _ := NewBuilder(Config{Weigher: ThroughputWeigher{PriorBusy: -1}}, nil)
	nodes := staticNodes(1, 1, 1)
	now := t0
	var tb *Table
	for r := 0; r < 100; r++ {
		for i := range nodes {
			u := 0.5
			if i == 0 {
				u = 0.01 // misreported
			}
			if i == 2 {
				u = 0 // cannot see its utilisation
			}
			nodes[i].Load = Load{Utilisation: u, Concurrency: 3, SampledAt: now}
		}
		tb = b.Build(nodes, now)
		for i := 0; i < tb.Len(); i++ {
			for k := 0; k < 10; k++ {
				tb.Endpoint(i).Acquire()
				tb.Endpoint(i).Complete()
			}
		}
		now = now.Add(3 * time.Second)
	}
	w0, w1 := tb.Weight(indexOf(tb, "n0")), tb.Weight(indexOf(tb, "n1"))
	if w0 > 8*1+1e-9 || w0 < 7 {
		t.Errorf("misreporting node: weight %v, want the range bound 8 (capacity 1 × 8)", w0)
	}
	if w1 <= 0 {
		t.Errorf("normal node: weight %v", w1)
	}
	if e := tb.Endpoint(indexOf(tb, "n2")); e.obs != (Observed{}) {
		t.Errorf("node reporting utilisation 0: observed %+v, want nothing", e.obs)
	}
}
