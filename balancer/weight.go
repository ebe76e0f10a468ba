package balancer

import (
	"math"
	"time"
)

// Weigher turns nodes and their load samples into weights.
//
// Weigh writes the weight of nodes[i] into out[i]. prev[i] is the weight the
// node had in the previous table (0 for a new node). Nodes that are not
// Ready get 0; every Ready node gets a positive, finite weight. Weigh must
// not block or retain the slices; it is called by a table's builder, off the
// hot path.
type Weigher interface {
	Weigh(now time.Time, nodes []Node, prev, out []float64)
}

// WeightConfig holds the guards every dynamic weigher applies. The zero
// value is usable: each field's doc gives the default taken for zero.
type WeightConfig struct {
	// Expiry is how old a load sample may be before it is ignored and the
	// node falls back to a capacity-based weight. Default 10 s.
	Expiry time.Duration
	// SlowStart is how long a newly joined node takes to ramp from
	// SlowStartFloor to its full weight. Default 30 s; negative disables.
	SlowStart time.Duration
	// SlowStartFloor is the share of its weight a brand-new node starts
	// with. Default 0.1.
	SlowStartFloor float64
	// Floor is the smallest weight a ready node gets, as a share of the
	// capacity-based weight it would have with no load information.
	// Default 0.02: a saturated node still sees an occasional request, so
	// it is noticed when it recovers.
	Floor float64
	// MaxStep bounds how far a weight may move in one update: the new weight
	// stays within [prev/MaxStep, prev×MaxStep]. Default 2; values below
	// 1.05 are raised to 1.05.
	MaxStep float64
}

// withDefaults returns c with defaults applied and unsafe values raised.
func (c WeightConfig) withDefaults() WeightConfig {
	if c.Expiry <= 0 {
		c.Expiry = 10 * time.Second
	}
	if c.SlowStart == 0 {
		c.SlowStart = 30 * time.Second
	}
	if c.SlowStartFloor <= 0 || c.SlowStartFloor > 1 {
		c.SlowStartFloor = 0.1
	}
	if c.Floor <= 0 || c.Floor > 1 {
		c.Floor = 0.02
	}
	if c.MaxStep == 0 {
		c.MaxStep = 2
	}
	if c.MaxStep < 1.05 {
		c.MaxStep = 1.05
	}
	return c
}

// fresh reports whether n has a load sample younger than expiry.
func fresh(n *Node, now time.Time, expiry time.Duration) bool {
	if n.Load.SampledAt.IsZero() {
		return false
	}
	age := now.Sub(n.Load.SampledAt)
	return age < expiry && age > -expiry // a clock far ahead counts as stale too
}

// utilisation returns the sample's utilisation clamped to [0, 1]; NaN
// counts as unknown (ok false).
func utilisation(n *Node) (u float64, ok bool) {
	u = n.Load.Utilisation
	if math.IsNaN(u) {
		return 0, false
	}
	return min(max(u, 0), 1), true
}

// StaticWeigher gives every ready node its capacity as weight, like a
// static weight in an nginx upstream block. It ignores load.
type StaticWeigher struct{}

// Weigh implements Weigher.
func (StaticWeigher) Weigh(_ time.Time, nodes []Node, _, out []float64) {
	for i := range nodes {
		out[i] = 0
		if nodes[i].State == Ready {
			out[i] = nodes[i].capacity()
		}
	}
}

// DynamicWeigher is Switchyard's default weigher. It keeps the seed's idea
// (capacity, headroom on a log scale, and the node's observed speed) but
// orients each factor so that more headroom and a faster node both mean
// more traffic, and guards every edge:
//
//	speed    = (concurrency / utilisation) / capacity, the request slots the
//	           node really has per unit of capacity; unknown for an idle node,
//	           which then takes the mean speed of the nodes that are busy
//	headroom = ln(1 + 100·(1−u)) / ln(101), 1 for an idle node, near 0 for a
//	           saturated one, concave like the seed's log
//	weight   = capacity × speed × headroom
//
// then the guards of WeightConfig in this order: a stale sample falls back
// to capacity × mean speed (no headroom term); a new node is scaled by its
// slow-start ramp; the weight is held to the floor; and it moves at most
// MaxStep from its previous value.
type DynamicWeigher struct {
	Config WeightConfig
}

// Weigh implements Weigher.
func (d DynamicWeigher) Weigh(now time.Time, nodes []Node, prev, out []float64) {
	cfg := d.Config.withDefaults()
	meanSpeed := meanOf(nodes, now, cfg.Expiry, func(n *Node, u float64) (float64, bool) {
		if u <= 0 || !(n.Load.Concurrency > 0) || math.IsInf(n.Load.Concurrency, 0) {
			return 0, false
		}
		return n.Load.Concurrency / u / n.capacity(), true
	})
	if meanSpeed == 0 {
		meanSpeed = 1
	}
	for i := range nodes {
		n := &nodes[i]
		if n.State != Ready {
			out[i] = 0
			continue
		}
		base := n.capacity() * meanSpeed
		w := base
		if u, ok := utilisation(n); ok && fresh(n, now, cfg.Expiry) {
			speed := meanSpeed
			if c := n.Load.Concurrency; u > 0 && c > 0 && !math.IsInf(c, 0) {
				speed = c / u / n.capacity()
			}
			w = n.capacity() * speed * logHeadroom(u)
		}
		out[i] = guard(cfg, n, now, base, w, prev[i])
	}
}

// logHeadroom maps utilisation 0..1 to a headroom factor 1..0 on a log
// scale: ln(1 + 100·(1−u)) / ln(101).
func logHeadroom(u float64) float64 {
	return math.Log1p(100*(1-u)) / math.Log(101)
}

// SeedWeigher is the literal Starlink formula, kept selectable so the
// benchmark can compare it with the default:
//
//	weight = capacity × log(remaining utilisation) × (utilisation / concurrency)
//
// with remaining utilisation read in percent (log(100·(1−u)), which is
// positive above 1 % headroom), and these guards at its edges: an idle node
// (utilisation or concurrency 0) takes the mean utilisation/concurrency of
// the busy nodes; a saturated node (less than 1 % headroom) gets the floor;
// then the same stale, slow-start, floor and step guards as DynamicWeigher.
type SeedWeigher struct {
	Config WeightConfig
}

// Weigh implements Weigher.
func (s SeedWeigher) Weigh(now time.Time, nodes []Node, prev, out []float64) {
	cfg := s.Config.withDefaults()
	meanPerTask := meanOf(nodes, now, cfg.Expiry, func(n *Node, u float64) (float64, bool) {
		if u <= 0 || !(n.Load.Concurrency > 0) || math.IsInf(n.Load.Concurrency, 0) {
			return 0, false
		}
		return u / n.Load.Concurrency, true
	})
	if meanPerTask == 0 {
		meanPerTask = 1
	}
	// With no load information the formula has log(100) × meanPerTask per
	// unit of capacity: that is the capacity-based fallback.
	for i := range nodes {
		n := &nodes[i]
		if n.State != Ready {
			out[i] = 0
			continue
		}
		base := n.capacity() * math.Log(100) * meanPerTask
		w := base
		if u, ok := utilisation(n); ok && fresh(n, now, cfg.Expiry) {
			perTask := meanPerTask
			if c := n.Load.Concurrency; u > 0 && c > 0 && !math.IsInf(c, 0) {
				perTask = u / c
			}
			w = n.capacity() * max(math.Log(100*(1-u)), 0) * perTask
		}
		out[i] = guard(cfg, n, now, base, w, prev[i])
	}
}

// meanOf averages f over the ready nodes with a fresh sample for which f
// reports ok. It returns 0 when there are none.
func meanOf(nodes []Node, now time.Time, expiry time.Duration, f func(n *Node, u float64) (float64, bool)) float64 {
	var sum float64
	var k int
	for i := range nodes {
		n := &nodes[i]
		if n.State != Ready || !fresh(n, now, expiry) {
			continue
		}
		u, ok := utilisation(n)
		if !ok {
			continue
		}
		if v, ok := f(n, u); ok && v > 0 && !math.IsInf(v, 0) {
			sum += v
			k++
		}
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}

// guard applies slow start, the floor and the step cap to a raw weight w.
// base is the node's capacity-based weight with no load information.
func guard(cfg WeightConfig, n *Node, now time.Time, base, w, prev float64) float64 {
	if math.IsNaN(w) || w < 0 {
		w = 0
	}
	if cfg.SlowStart > 0 && !n.Since.IsZero() {
		if age := now.Sub(n.Since); age < cfg.SlowStart {
			ramp := cfg.SlowStartFloor + (1-cfg.SlowStartFloor)*max(float64(age), 0)/float64(cfg.SlowStart)
			w *= ramp
		}
	}
	if prev > 0 {
		w = min(max(w, prev/cfg.MaxStep), prev*cfg.MaxStep)
	}
	floor := base * cfg.Floor
	if !(w >= floor) {
		w = floor
	}
	if !(w > 0) {
		w = math.SmallestNonzeroFloat32
	}
	if math.IsInf(w, 0) || w > maxWeight {
		w = maxWeight
	}
	return w
}

// maxWeight bounds a weight so sums stay finite.
const maxWeight = 1e12
