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
//	weight = (completed + Prior) / (busy × ρ + Prior / capacity)
//
// With nothing observed a node weighs its capacity; with many completions
// it weighs its measured throughput divided by ρ, i.e. the capacity it
// really delivers. Prior is how many completions the capacity figure is
// worth: a large node, which completes many requests, soon shows its own
// speed; a small one stays close to its datasheet until it has completed
// a few requests. A node slowed by a noisy neighbour, or slower than its
// card type says, completes fewer requests per busy second and loses
// weight within a few half-lives (ObserveHalfLife); one that recovers
// regains it the same way.
//
// It is the default because weights proportional to real speed are what
// the default picker's in-flight comparison needs (bench/results/
// policies-analysis.md): a node with twice the weight should hold twice
// the requests. DynamicWeigher, which aims at equal utilisation, fights
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
			x = (obs[i].Completed + prior) / (obs[i].Busy*rho + prior/c)
			x = min(max(x, c/bound), c*bound)
		}
		out[i] = guard(cfg, n, now, c, x, prev[i])
	}
}
