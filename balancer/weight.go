package balancer

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Weigher turns nodes and their load samples into weights.
//
// Weigh writes the weight of nodes[i] into out[i]. obs[i] is what the
// gateway observed of the node (see Observed). prev[i] is the weight the
// weigher gave the node for the previous table, before the builder lowered
// it for KV-cache pressure (0 for a new node, or one that was not Ready).
// Nodes that are not
// Ready get 0; every Ready node gets a positive, finite weight. Weigh must
// not block or retain the slices; it is called by a table's builder, off the
// hot path.
type Weigher interface {
	Weigh(now time.Time, nodes []Node, obs []Observed, prev, out []float64)
}

// WeightConfig holds the guards every dynamic weigher applies. The zero
// value is usable: each field's doc gives the default taken for zero.
type WeightConfig struct {
	// Expiry is how old a load sample may be before it is ignored and the
	// node falls back to a capacity-based weight. Default 10 s.
	Expiry time.Duration
	// SlowStart is how long a newly joined node takes to ramp from
	// SlowStartFloor to its full weight. Default 30 s; at most 10 min;
	// negative disables.
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
	// Learn is the gain of HeadroomWeigher's feedback term: each update
	// multiplies a node's previous weight by (its headroom / the mean
	// headroom)^Learn. Default 0.25; negative disables the feedback.
	// Larger gains amplify the noise of one-second samples in
	// bench/policysim, and 1 oscillates. Other weighers ignore it.
	Learn float64
	// Trust bounds the feedback: the learned weight stays within
	// [formula/Trust, formula×Trust] of HeadroomWeigher's formula. Default
	// 2 (enough for a node three times slower than it reports, together
	// with the formula's own headroom term); values below 1 are raised
	// to 1.
	Trust float64
	// AdaptStep widens HeadroomWeigher's step cap for a node whose headroom
	// is far from the fleet's mean h̄: an increase may go up to MaxStep ×
	// min(h/h̄, AdaptStep), a decrease down to 1/(MaxStep × min(h̄/h,
	// AdaptStep)). A node as busy as the fleet keeps MaxStep. Default 4;
	// 1 or less disables it.
	AdaptStep float64
}

// withDefaults returns c with defaults applied and unsafe values raised.
func (c WeightConfig) withDefaults() WeightConfig {
	if c.Expiry <= 0 {
		c.Expiry = 10 * time.Second
	}
	if c.SlowStart == 0 {
		c.SlowStart = 30 * time.Second
	}
	c.SlowStart = min(c.SlowStart, maxSlowStart)
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
	if c.Learn == 0 {
		c.Learn = 0.25
	}
	if c.AdaptStep == 0 {
		c.AdaptStep = 4
	}
	if c.Trust == 0 {
		c.Trust = 2
	}

	if c.Trust < 1 {
		c.Trust = 1
	}
	return c
}

// fresh reports whether n has a load sample younger than expiry.
func fresh(n *Node, now time.Time, expiry time.Duration) bool {
	if n.Load.SampledAt.IsZero() {
		return false
	}
	// Wall-clock nanoseconds: samples come over the wire without a
	// monotonic reading, and Time.Sub is several times slower than this on
	// a rebuild's hot loop.
	age := now.UnixNano() - n.Load.SampledAt.UnixNano()
	return age < int64(expiry) && age > -int64(expiry) // a clock far ahead counts as stale too
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
func (StaticWeigher) Weigh(_ time.Time, nodes []Node, _ []Observed, _, out []float64) {
	for i := range nodes {
		out[i] = 0
		if nodes[i].State == Ready {
			out[i] = nodes[i].capacity()
		}
	}
}

// HeadroomWeigher (policy headroom-swrr, an earlier default) aims
// at equal utilisation. It keeps the seed's idea
// (capacity, headroom on a log scale, and the node's observed speed) but
// orients each factor so that more headroom and a faster node both mean
// more traffic, and guards every edge:
//
//	speed    = (concurrency / utilisation) / capacity, the request slots the
//	           node really has per unit of capacity; unknown for an idle node,
//	           which then takes the mean speed of the nodes that are busy
//	headroom = ln(1 + 100·(1−u)) / ln(101), 1 for an idle node, near 0 for a
//	           saturated one, concave like the seed's log
//	formula  = capacity × speed × headroom
//
// The formula alone is a proportional controller: a node whose requests
// take three times longer than its datasheet says (a noisy neighbour, a
// slower card) reports the same slots and only a higher utilisation, and
// the formula settles where that node stays far busier than the rest
// (around 99 % when the fleet is at 90 %). So each node past slow start
// with a fresh sample and a previous weight also learns from that weight
// (issue 7; the evidence is in bench/results/policies-analysis.md):
//
//	learned = prev × (headroom / h̄w)^Learn, h̄w the mean headroom weighted by prev
//	weight  = learned, held within [formula/Trust, formula×Trust]
//
// This is integral feedback: it stops moving only when every node has the
// same headroom, whatever its true speed; the trust region keeps it
// anchored to the formula, so a wild previous weight is pulled back.
//
// Then the guards of WeightConfig in this order: a stale sample falls back
// to capacity × mean speed (no headroom term); a new node is scaled by its
// slow-start ramp; the weight is held to the floor; and it moves at most
// MaxStep from its previous value — widened by AdaptStep for a node much
// less or much more busy than the fleet, so a node back from a noisy
// neighbour regains its traffic in a few updates instead of a dozen.
type HeadroomWeigher struct {
	Config WeightConfig
}

// Weigh implements Weigher.
func (d HeadroomWeigher) Weigh(now time.Time, nodes []Node, _ []Observed, prev, out []float64) {
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
	// Per node, once: its headroom (NaN without a fresh sample) and whether
	// the feedback applies to it. Large tables call this every few seconds,
	// so the logs and checks are not repeated per pass.
	sp := scratchPool.Get().(*weighScratch)
	defer scratchPool.Put(sp)
	sp.hs, sp.ls = slices.Grow(sp.hs[:0], len(nodes))[:len(nodes)], slices.Grow(sp.ls[:0], len(nodes))[:len(nodes)]
	hs, ls := sp.hs, sp.ls
	// Mean headrooms: weighted by previous weight (the traffic each node
	// was given) over the nodes that learn, for the feedback; weighted by
	// capacity over every fresh node, for the adaptive step.
	var hw, ww, hc, cc float64
	for i := range nodes {
		n := &nodes[i]
		hs[i] = math.NaN()
		u, ok := utilisation(n)
		if !ok || n.State != Ready || !fresh(n, now, cfg.Expiry) {
			continue
		}
		h := logHeadroom(u)
		hs[i] = h
		hc += n.capacity() * h
		cc += n.capacity()
		if ls[i] = learns(cfg, n, now, prev[i]); ls[i] {
			hw += prev[i] * h
			ww += prev[i]
		}
	}
	var meanW, meanC float64
	if ww > 0 && !math.IsInf(ww, 0) {
		meanW = hw / ww
	}
	if cc > 0 {
		meanC = hc / cc
	}
	// formula returns node i's formula weight and headroom, or ok false
	// when it has no fresh sample.
	formula := func(i int) (w, h float64, ok bool) {
		h = hs[i]
		if math.IsNaN(h) {
			return 0, 0, false
		}
		n := &nodes[i]
		u, _ := utilisation(n)
		speed := meanSpeed
		if c := n.Load.Concurrency; u > 0 && c > 0 && !math.IsInf(c, 0) {
			speed = c / u / n.capacity()
		}
		return n.capacity() * speed * h, h, true
	}
	pow := func(x float64) float64 { return math.Pow(x, cfg.Learn) }
	if cfg.Learn == 0.25 { // the default: two square roots are far cheaper than Pow
		pow = func(x float64) float64 { return math.Sqrt(math.Sqrt(x)) }
	}
	// Pass 1: the learned weights, and the scale that makes them add up to
	// the formula's total over the same nodes, so that the feedback only
	// redistributes traffic and the trust region is relative to shares.
	learning := cfg.Learn > 0 && meanW > 0
	var sumF, sumL float64
	if learning {
		for i := range nodes {
			if !ls[i] {
				continue
			}
			f, h, _ := formula(i)
			// The error is clamped to [1/2, 2]: near saturation the log
			// headroom falls to 0 and would otherwise throw the weight to
			// the trust bound in one update.
			l := prev[i] * pow(min(max(h/meanW, 0.5), 2))
			out[i] = l
			sumF += f
			sumL += l
		}
	}
	scale := 1.0
	if sumL > 0 && sumF > 0 && !math.IsInf(sumL, 0) {
		scale = sumF / sumL
	}
	for i := range nodes {
		n := &nodes[i]
		if n.State != Ready {
			out[i] = 0
			continue
		}
		base := n.capacity() * meanSpeed
		w := base
		step := cfg.MaxStep
		if f, h, ok := formula(i); ok {
			w = f
			if ls[i] {
				if learning {
					w = min(max(out[i]*scale, f/cfg.Trust), f*cfg.Trust)
				}
				if cfg.AdaptStep > 1 && meanC > 0 && w > prev[i] {
					step *= min(max(h/meanC, 1), cfg.AdaptStep)
				}
			}
		}
		out[i] = guardStep(cfg, n, now, base, w, prev[i], step)
	}
}

// learns reports whether the feedback applies to n: a Ready node with a
// fresh sample, a previous weight, and past slow start.
func learns(cfg WeightConfig, n *Node, now time.Time, prev float64) bool {
	if n.State != Ready || !(prev > 0) || math.IsInf(prev, 0) || !fresh(n, now, cfg.Expiry) {
		return false
	}
	if cfg.SlowStart > 0 && !n.Since.IsZero() && now.Sub(n.Since) < cfg.SlowStart {
		return false
	}
	return true
}

// weighScratch is HeadroomWeigher's per-node scratch, pooled: a large
// route's rebuild would otherwise allocate it every few seconds.
type weighScratch struct {
	hs []float64
	ls []bool
}

var scratchPool = sync.Pool{New: func() any { return new(weighScratch) }}

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
// then the same stale, slow-start, floor and step guards as HeadroomWeigher.
type SeedWeigher struct {
	Config WeightConfig
}

// Weigh implements Weigher.
func (s SeedWeigher) Weigh(now time.Time, nodes []Node, _ []Observed, prev, out []float64) {
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
	return guardStep(cfg, n, now, base, w, prev, cfg.MaxStep)
}

// guardStep is guard with the step cap given.
func guardStep(cfg WeightConfig, n *Node, now time.Time, base, w, prev, step float64) float64 {
	if math.IsNaN(w) || w < 0 {
		w = 0
	}
	if cfg.SlowStart > 0 && !n.Since.IsZero() {
		if age := now.Sub(n.Since); age < cfg.SlowStart {
			ramp := cfg.SlowStartFloor + (1-cfg.SlowStartFloor)*max(float64(age), 0)/float64(cfg.SlowStart)
			w *= ramp
		}
	}
	if prev > 0 && !math.IsInf(prev, 0) {
		w = min(max(w, prev/step), prev*step)
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

// maxSlowStart bounds WeightConfig.SlowStart: the builder stops telling
// weighers when a node joined once it has been there this long.
const maxSlowStart = 10 * time.Minute

// maxWeight bounds a weight so sums stay finite.
const maxWeight = 1e12
