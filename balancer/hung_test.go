package balancer

import (
	"math"
	"testing"
	"time"
)

// hungRun drives a Builder like a gateway does, every 3 s for 30 rounds,
// over three nodes of capacity 1: a and b complete 10 requests a round;
// c completes 5 until round 10, when it hangs: it holds one request and
// completes nothing. sample says what c's load sample looks like once it
// hangs: "busy" (utilisation 1), "idle" (0), or "stale" (its agent cannot
// scrape the engine and resends its last load, which ages). exclude sets
// ExcludeHealth on c from the hang on. It returns c's weight in the table
// of the hang and every weight of each later table.
func hungRun(t *testing.T, sample string, exclude bool) (atHang float64, after [][3]float64) {
	t.Helper()
	b, err := NewBuilder(Config{Weigher: ThroughputWeigher{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes := staticNodes(1, 1, 1)
	const hang = 10
	now := t0
	for r := 0; r < 30; r++ {
		for i := range nodes {
			nodes[i].Load = Load{Utilisation: 0.6, Concurrency: 6, SampledAt: now}
		}
		if r > hang {
			switch sample {
			case "busy":
				nodes[2].Load = Load{Utilisation: 1, Concurrency: 6, SampledAt: now}
			case "idle":
				nodes[2].Load = Load{SampledAt: now}
			case "stale":
				nodes[2].Load.SampledAt = t0.Add(hang * 3 * time.Second)
			}
		}
		tb := b.Build(nodes, now)
		c := tb.Endpoint(2)
		switch {
		case r == hang:
			atHang = tb.Weight(2)
			c.Acquire() // the request it will never answer
			if exclude {
				c.Exclude(ExcludeHealth)
			}
		case r > hang:
			after = append(after, [3]float64{tb.Weight(0), tb.Weight(1), tb.Weight(2)})
		}
		for i, k := range []int{10, 10, 5} {
			if i == 2 && r >= hang {
				k = 0
			}
			for j := 0; j < k; j++ {
				tb.Endpoint(i).Acquire()
				tb.Endpoint(i).Complete()
			}
		}
		now = now.Add(3 * time.Second)
	}
	return atHang, after
}

// TestHungNodeWeightDoesNotRise: a node that stops completing while it
// holds requests never gets more weight than it had when it hung, whatever
// its load sample says, excluded or not (issue 12: before, a stale sample
// sent it back to its capacity's weight, 0.73 → 1.0 here).
func TestHungNodeWeightDoesNotRise(t *testing.T) {
	for _, sample := range []string{"busy", "idle", "stale"} {
		for _, exclude := range []bool{false, true} {
			name := sample
			if exclude {
				name += "/excluded"
			}
			t.Run(name, func(t *testing.T) {
				atHang, after := hungRun(t, sample, exclude)
				for r, w := range after {
					if w[2] > atHang*(1+1e-12) {
						t.Fatalf("round %d after the hang: weight %.4f, above %.4f at the hang", r+1, w[2], atHang)
					}
				}
				if sample == "busy" && !exclude && !(after[len(after)-1][2] < 0.6*atHang) {
					t.Errorf("busy and completing nothing: weight %.4f, want it well below %.4f", after[len(after)-1][2], atHang)
				}
			})
		}
	}
}

// TestExcludedNodeDoesNotMoveOthers: while a hung node is excluded for
// failing, what its sample says (busy or idle) does not change the other
// nodes' weights: its busy time without completions is left out of the
// route's rate.
func TestExcludedNodeDoesNotMoveOthers(t *testing.T) {
	_, busy := hungRun(t, "busy", true)
	_, idle := hungRun(t, "idle", true)
	for r := range busy {
		for i := 0; i < 2; i++ {
			if math.Abs(busy[r][i]-idle[r][i]) > 1e-9 {
				t.Fatalf("round %d, node %d: weight %.6f with the excluded node busy, %.6f with it idle", r+1, i, busy[r][i], idle[r][i])
			}
		}
	}
}
