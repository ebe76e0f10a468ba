package balancer

import (
	"math"
	"time"
)

// ThroughputWeigher weighs a node by how fast it has shown it is: the
// requests per second it completes while fully busy, learned from what the
// gateway observed (Observed: completions against the node's reported
// utilisation × time), in units of capacity:
//
//	ρ      = Σ completed / Σ (busy × capacity) over the ready nodes: the
//	         fleet's completions per second per unit of capacity
//	weight = (completed + ρ·capacity·b₀) / (ρ·(busy + b₀))
//	b₀     = max(PriorBusy, Prior / (ρ·capacity))
//
// With nothing observed a node weighs its capacity; with many completions
// it weighs its measured throughput divided by ρ, i.e. the capacity it
// really delivers. The capacity counts as b₀ seconds of busy time at its
// own rate, worth at least Prior completions: a large node, which
// completes many requests, shows its own speed after a few busy seconds;
// a small one stays close to its datasheet until it has completed a few
// requests. A node slowed by a noisy neighbour, or slower than its
// card type says, completes fewer requests per busy second and loses
// weight within a few half-lives (ObserveHalfLife); one that recovers
// regains it the same way.
//
// It is the default because weights proportional to real speed are what
// the default picker's in-flight comparison needs (bench/results/
// policies-analysis.md): a node with twice the weight should hold twice
// the requests. HeadroomWeigher, which aims at equal utilisation, fights
// that comparison. The guards of WeightConfig apply in this order: a node
// without a fresh sample weighs its capacity; a new node is scaled by its
// slow-start ramp; the weight is held to the floor (Floor × capacity) and
// moves at most MaxStep per update. What is learned stays within Range of
// the capacity. Learn, Trust and AdaptStep are not used.
type ThroughputWeigher struct {
	Config WeightConfig
	// Prior is how many completions a node's capacity counts as. Default
	// 4; at least 0.1.
	Prior float64
	// PriorBusy is how much busy time the capacity counts as at least.
	// Busy time comes from one utilisation sample per rebuild (a node with
	// 4 slots reports 0, 25, 50 … %), so it is noisy for a while even when
	// completions are many; the prior keeps a new route's weights near the
	// capacities until tens of busy seconds are in. The price is shrinkage:
	// a node at 60 % busy keeps about 40 % of its weight from the prior
	// (a node twice as slow weighs 0.7 of its peers, not 0.5), and the
	// in-flight comparison of two choices does the rest. Default 20 s
	// (bench/policysim: 5, 10, 20 s within 0.3 s of p99 of each other, 40 s
	// 0.4 s worse); negative for none.
	PriorBusy time.Duration
	// Range bounds what is learned: a weight stays within [capacity/Range,
	// capacity×Range], so an agent that misreports utilisation (0.01 on a
	// busy node) cannot pull a route's traffic onto one node. Default 8
	// (a noisy neighbour slows a node 2-4×); at least 1.
	Range float64
}

// Weigh implements Weigher.
func (w ThroughputWeigher) Weigh(now time.Time, nodes []Node, obs []Observed, prev, out []float64) {
	cfg := w.Config.withDefaults()
	prior := w.Prior
	if !(prior >= 0.1) {
		prior = 4
	}
	priorBusy := w.PriorBusy.Seconds()
	if w.PriorBusy == 0 {
		priorBusy = 20
	}
	priorBusy = max(priorBusy, 0)
	bound := w.Range
	if bound == 0 || math.IsNaN(bound) {
		bound = 8
	}
	bound = max(bound, 1)
	var done, busy float64
	for i := range nodes {
		if nodes[i].State == Ready {
			done += obs[i].Completed
			busy += obs[i].Busy * nodes[i].capacity()
		}
	}
	rho := 0.0
	if done > 0 && busy > 0 && !math.IsInf(done, 0) && !math.IsInf(busy, 0) {
		rho = done / busy
	}
	for i := range nodes {
		n := &nodes[i]
		if n.State != Ready {
			out[i] = 0
			continue
		}
		c := n.capacity()
		x := c
		if rho > 0 && fresh(n, now, cfg.Expiry) {
			// The prior is pseudo-data at the capacity's rate: e0 busy
			// seconds, at least priorBusy, worth at least prior completions.
			e0 := max(priorBusy, prior/(rho*c))
			x = (obs[i].Completed + rho*c*e0) / (rho * (obs[i].Busy + e0))
			x = min(max(x, c/bound), c*bound)
		}
		out[i] = guard(cfg, n, now, c, x, prev[i])
	}
}
