package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Policy names a picking policy.
type Policy uint8

const (
	// SWRR is blocked smooth weighted round robin (the default).
	SWRR Policy = iota
	// RoundRobin ignores weights.
	RoundRobin
	// P2C is power of two choices on live in-flight counts, weighted:
	// of two random nodes the one with the lower (in-flight+1)/weight wins
	// (Envoy's least-request default).
	P2C
	// ConsistentHash is a hash ring (xxhash) with bounded load.
	ConsistentHash
	// Random picks uniformly at random.
	Random
	policyCount
)

var policyNames = [...]string{"swrr", "round-robin", "p2c", "consistent-hash", "random"}

func (p Policy) String() string {
	if p < policyCount {
		return policyNames[p]
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

// ParsePolicy parses a policy name as String prints it.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if n == s {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("balancer: unknown policy %q (want one of %v)", s, policyNames)
}

// Named configurations compared by the benchmark harness.
var namedConfigs = map[string]Config{
	"dynamic-swrr":  {Policy: SWRR, Weigher: ThroughputWeigher{}, Choices: 2},
	"headroom-swrr": {Policy: SWRR, Weigher: HeadroomWeigher{}, Choices: 1},
	"seed-swrr":     {Policy: SWRR, Weigher: SeedWeigher{}, Choices: 1, LoadBound: -1},
	"static-swrr":   {Policy: SWRR, Weigher: StaticWeigher{}, Choices: 1, LoadBound: -1},
	"round-robin":   {Policy: RoundRobin, Weigher: StaticWeigher{}},
	"p2c":           {Policy: P2C, Weigher: StaticWeigher{}},
	"ring-hash":     {Policy: ConsistentHash, Weigher: StaticWeigher{}},
	"random":        {Policy: Random, Weigher: StaticWeigher{}},
}

// NamedConfig returns a named policy and weigher pair: dynamic-swrr (the
// default: two choices over ThroughputWeigher's weights), headroom-swrr
// (the default until issue 7's follow-up: HeadroomWeigher, one choice with
// the in-flight bound), seed-swrr (the literal seed formula, one choice,
// no bound), static-swrr (nginx: static weights, one choice, no bound),
// round-robin, p2c (Envoy's least request), ring-hash (consistent hashing
// with bounded load) and random.
func NamedConfig(name string) (Config, error) {
	c, ok := namedConfigs[name]
	if !ok {
		names := make([]string, 0, len(namedConfigs))
		for n := range namedConfigs {
			names = append(names, n)
		}
		slices.Sort(names)
		return Config{}, fmt.Errorf("balancer: unknown policy %q (want one of %v)", name, names)
	}
	return c, nil
}

func newPicker(cfg Config, t *Table) picker {
	if t.ready == 0 {
		return emptyPicker{}
	}
	switch cfg.Policy {
	case SWRR:
		if cfg.Choices == 1 && cfg.LoadBound < 0 && equalWeights(t.weights[:t.ready]) {
			return newRoundRobin()
		}
		p := newBlockedSWRR(t.weights[:t.ready], cfg.BlockSize, cfg.Choices == 2)
		if cfg.Choices == 1 && cfg.LoadBound > 0 {
			p.setBound(t, cfg.LoadBound)
		}
		return p
	case RoundRobin:
		return newRoundRobin()
	case P2C:
		return newP2C(t.weights[:t.ready])
	case ConsistentHash:
		return newRing(t, cfg.VirtualNodes, cfg.LoadFactor)
	case Random:
		return randomPicker{}
	}
	panic("BUG: balancer: unvalidated policy " + cfg.Policy.String())
}

func equalWeights(w []float64) bool {
	for _, x := range w[1:] {
		if x != w[0] {
			return false
		}
	}
	return true
}

type emptyPicker struct{}

func (emptyPicker) pick(t *Table, _ uint64, _ []*Endpoint) (*Endpoint, error) {
	return nil, &NoEndpointError{Nodes: len(t.info)}
}

// blockedSWRR splits the ready nodes into blocks of at most blockSize,
// runs nginx's SWRR inside each block over a schedule worked out at build
// time, and chooses blocks with a stride scheduler over the block sums.
//
// With two choices a pick weighs two candidates: the node the schedule
// gives, as single-choice SWRR picks it, and a second one drawn at random
// in proportion to weight (an alias table over the ready nodes: one memory
// access, no shared counter; unlike a second cursor inside
// the block, which would keep a fixed distance from the first and, in a
// one-block table, could even be the same node every time). The one with
// fewer in-flight requests per unit of weight wins, the scheduled one on a
// tie: with nothing in flight the picks are exactly nginx's sequence, and
// under load a node that has fallen behind (long requests, a stall the
// weights have not seen yet) is passed over for one that has not. A node
// whose engine reported waiting requests counts them too, aged
// (Config.QueueHalfLife): the queue other gateways and clients built,
// which this gateway's in-flight count cannot see.
type blockedSWRR struct {
	blocks []block
	seq    []uint8    // every block's schedule, back to back
	top    *stride    // nil with a single block
	two    bool       // two choices
	draw   aliasTable // with two choices: ready nodes drawn by weight
	seed   uint64     // random per table, mixed into the second draw

	// The in-flight bound (Config.LoadBound); bound is nil without it.
	bound []float64     // bound[i]: LoadBound × node i's share of the weight
	total *atomic.Int64 // the route's in-flight requests
}

// boundTries is how many over-bound nodes a pick passes over before it
// takes the least loaded of them.
const boundTries = 8

func (p *blockedSWRR) setBound(t *Table, factor float64) {
	var sum float64
	for _, w := range t.weights[:t.ready] {
		sum += w
	}
	p.bound = make([]float64, t.ready)
	for i, w := range t.weights[:t.ready] {
		p.bound[i] = factor * w / sum
	}
	p.total = t.eps[0].total
}

// block is one block's schedule. Its counter is its only mutable state.
type block struct {
	first, n       uint32 // the block's nodes are eps[first : first+n]
	seqOff, seqLen uint32 // its schedule is seq[seqOff : seqOff+seqLen]
	ctr            atomic.Uint64
}

func newBlockedSWRR(w []float64, blockSize int, two bool) *blockedSWRR {
	nb := (len(w) + blockSize - 1) / blockSize
	p := &blockedSWRR{blocks: make([]block, nb), two: two}
	sums := make([]float64, nb)
	q := make([]uint32, len(w))
	period := 0
	for b := range p.blocks {
		lo := b * blockSize
		hi := min(lo+blockSize, len(w))
		blk := &p.blocks[b]
		blk.first, blk.n = uint32(lo), uint32(hi-lo)
		for _, x := range w[lo:hi] {
			sums[b] += x
		}
		n := quantize(w[lo:hi], q[lo:hi])
		blk.seqOff, blk.seqLen = uint32(period), uint32(n)
		period += n
		blk.ctr.Store(randomStart())
	}
	p.seq = make([]uint8, period)
	// Working out the schedules is the bulk of a large build; the blocks
	// are independent, so big tables use every core.
	workers := 1
	if nb >= parallelBlocks {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := make([]int64, blockSize)
			for b := k; b < nb; b += workers {
				blk := &p.blocks[b]
				bq := q[blk.first : blk.first+blk.n]
				seq := p.seq[blk.seqOff : blk.seqOff+blk.seqLen]
				if blk.n <= 8 {
					swrrSequence8(bq, seq)
				} else {
					swrrSequence(bq, seq, scratch)
				}
			}
		}()
	}
	wg.Wait()
	if nb > 1 {
		p.top = newStride(sums)
	}
	if two {
		p.draw = newAliasTable(w)
		p.seed = rand.Uint64()
	}
	return p
}

// parallelBlocks is the block count from which schedules are worked out on
// several cores.
const parallelBlocks = 2048

func (p *blockedSWRR) pick(t *Table, _ uint64, avoid []*Endpoint) (*Endpoint, error) {
	if p.bound != nil {
		return p.pickBounded(t, avoid)
	}
	a, ticket, ok := p.scheduled(t, goroutineHint(), avoid)
	if !ok {
		return t.scan(0, avoid)
	}
	if p.two {
		// The second candidate's draws come from the schedule's ticket,
		// unique per pick, mixed with the table's seed: no random number
		// generator on the hot path.
		if b, ok := p.drawn(t, ticket^p.seed, avoid); ok && b != a {
			// Fewer requests per unit of weight, compared without
			// dividing: the gateway's own in flight plus the engine's
			// reported queue, aged (0 when unknown: in flight alone).
			ra, rb := &t.live[a], &t.live[b]
			sa, sb := ra.s, rb.s
			if (float64(sb.inflight.Load())+float64(rb.queue))*sa.loadWeight() <
				(float64(sa.inflight.Load())+float64(ra.queue))*sb.loadWeight() {
				a = b
			}
		}
	}
	return t.eps[a], nil
}

// scheduled returns the node the schedule gives next, or else the next
// eligible one in its block, and the block counter's value (a ticket
// unique to this pick); ok is false after a bounded number of fully
// excluded blocks. shard picks the stride scheduler's counter.
func (p *blockedSWRR) scheduled(t *Table, shard uint64, avoid []*Endpoint) (j uint32, ticket uint64, ok bool) {
	for attempt := 0; attempt < 2*len(p.blocks)+1; attempt++ {
		b := &p.blocks[0]
		if p.top != nil {
			b = &p.blocks[p.top.next(shard)]
		}
		ticket = b.ctr.Add(1)
		if j, ok := b.eligibleFrom(t, uint32(ticket%uint64(b.seqLen)), p.seq, avoid); ok {
			return j, ticket, true
		}
		shard++
	}
	return 0, 0, false
}

// goroutineHint returns a number that stays the same for the calling
// goroutine (where its stack is) and differs between goroutines, so concurrent picks spread over the stride scheduler's
// shards while one goroutine's picks walk one shard, in order.
func goroutineHint() uint64 {
	var x byte
	// Goroutine stacks are at least 2 KiB long, so at least 2 KiB apart.
	return uint64(uintptr(unsafe.Pointer(&x)) >> 11)
}

// drawn returns an eligible node drawn in proportion to weight, or ok
// false after drawTries ineligible draws. It writes no shared counter and
// reads one alias entry per draw. r is the pick's random word.
func (p *blockedSWRR) drawn(t *Table, r uint64, avoid []*Endpoint) (uint32, bool) {
	for range drawTries {
		r = mix(r)
		if j := p.draw.draw(r); t.eligible(j, avoid) {
			return j, true
		}
	}
	return 0, false
}

// drawTries bounds the draws for the second candidate; with most nodes
// excluded a pick goes on with the scheduled one alone.
const drawTries = 4

// eligibleFrom returns the node at place at of b's schedule, or else the
// next eligible node of the block after it.
func (b *block) eligibleFrom(t *Table, at uint32, seq []uint8, avoid []*Endpoint) (uint32, bool) {
	i := uint32(seq[b.seqOff+at])
	for k := uint32(0); k < b.n; k++ {
		j := i + k
		if j >= b.n {
			j -= b.n
		}
		j += b.first
		if t.eligible(j, avoid) {
			return j, true
		}
	}
	return 0, false
}

// mix is splitmix64's step: a new well-mixed word from r.
func mix(r uint64) uint64 {
	r += 0x9E3779B97F4A7C15
	r = (r ^ r>>30) * 0xBF58476D1CE4E5B9
	r = (r ^ r>>27) * 0x94D049BB133111EB
	return r ^ r>>31
}

// pickBounded is single-choice SWRR with the in-flight bound: a scheduled
// node over its bound is passed over for the next scheduled one, up to
// boundTries times, after which the least loaded of those seen is taken.
func (p *blockedSWRR) pickBounded(t *Table, avoid []*Endpoint) (*Endpoint, error) {
	total := float64(p.total.Load())
	var best *Endpoint
	bestLoad := math.Inf(1)
	shard := goroutineHint()
	for over := 0; over < boundTries; over++ {
		j, _, ok := p.scheduled(t, shard, avoid)
		if !ok {
			break
		}
		limit := p.bound[j]*total + 1
		load := float64(t.live[j].s.inflight.Load())
		if load < limit {
			return t.eps[j], nil
		}
		if r := load / limit; r < bestLoad {
			best, bestLoad = t.eps[j], r
		}
	}
	if best != nil {
		return best, nil
	}
	return t.scan(0, avoid)
}

// roundRobin takes the ready nodes in turn.
type roundRobin struct{ ctr atomic.Uint64 }

func newRoundRobin() *roundRobin {
	r := &roundRobin{}
	r.ctr.Store(randomStart())
	return r
}

func (r *roundRobin) pick(t *Table, _ uint64, avoid []*Endpoint) (*Endpoint, error) {
	return t.scan(int(r.ctr.Add(1)%uint64(t.ready)), avoid)
}

// randomPicker picks uniformly at random.
type randomPicker struct{}

func (randomPicker) pick(t *Table, _ uint64, avoid []*Endpoint) (*Endpoint, error) {
	return t.scan(int(rand.Uint64N(uint64(t.ready))), avoid)
}

// p2c is weighted power of two choices on in-flight counts: two nodes are
// drawn with probability proportional to their weights (an alias table,
// O(1) a draw), and the one with the lower (in-flight+1)/weight wins. With
// equal weights it is Envoy's P2C least-request; with unequal weights a
// node can take more than 2/N of the traffic, which uniform draws forbid.
type p2c struct {
	draw aliasTable
}

func newP2C(w []float64) *p2c { return &p2c{draw: newAliasTable(w)} }

// aliasTable draws indexes in proportion to weights in O(1) (Vose's alias
// method): index i is kept when the draw's low word is below its prob,
// else its alias is taken. Each entry is 8 bytes, so a draw costs one
// memory access.
type aliasTable []aliasEntry

type aliasEntry struct{ prob, alias uint32 }

// newAliasTable builds the table over w (all positive).
func newAliasTable(w []float64) aliasTable {
	n := len(w)
	t := make(aliasTable, n)
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	small := make([]int32, 0, n/2+1)
	large := make([]int32, 0, n/2+1)
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t[s] = aliasEntry{uint32(scaled[s] * math.MaxUint32), uint32(l)}
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, list := range [][]int32{small, large} {
		for _, i := range list {
			t[i] = aliasEntry{math.MaxUint32, uint32(i)}
		}
	}
	return t
}

// draw returns an index with probability proportional to its weight,
// using the random word r.
func (t aliasTable) draw(r uint64) uint32 {
	i := uint32((r >> 32) * uint64(len(t)) >> 32)
	if e := t[i]; uint32(r) >= e.prob {
		return e.alias
	}
	return i
}

func (p *p2c) pick(t *Table, _ uint64, avoid []*Endpoint) (*Endpoint, error) {
	if t.ready == 1 {
		return t.scan(0, avoid)
	}
	r := rand.Uint64()
	i := p.draw.draw(r)
	j := p.draw.draw(mix(r))
	if j == i {
		j = p.draw.draw(mix(r + 1))
	}
	if j == i { // one node holds most of the weight: any other will do
		j = uint32((uint64(i) + 1 + rand.Uint64N(uint64(t.ready-1))) % uint64(t.ready))
	}
	a, b := t.eps[i], t.eps[j]
	okA, okB := t.eligible(i, avoid), t.eligible(j, avoid)
	switch {
	case okA && okB:
		// (in-flight+1)/weight, compared without dividing.
		if float64(t.live[i].s.inflight.Load()+1)*t.weights[j] <= float64(t.live[j].s.inflight.Load()+1)*t.weights[i] {
			return a, nil
		}
		return b, nil
	case okA:
		return a, nil
	case okB:
		return b, nil
	}
	return t.scan(int(i), avoid)
}

// ring is consistent hashing with bounded load (Mirrokni et al., 2016): a
// key goes to the first node clockwise from its hash whose in-flight count
// is under LoadFactor × its weighted share of the route's in-flight total.
type ring struct {
	hashes  []uint64 // sorted points
	owners  []uint32 // owners[k] owns hashes[k]
	share   []float64
	factor  float64
	regLoad *atomic.Int64
}

func newRing(t *Table, virtual int, factor float64) *ring {
	r := &ring{factor: factor, share: make([]float64, t.ready)}
	type point struct {
		h     uint64
		owner uint32
	}
	pts := make([]point, 0, t.ready*virtual)
	var sum float64
	for i := 0; i < t.ready; i++ {
		sum += t.weights[i]
		d := xxhash.New()
		for v := 0; v < virtual; v++ {
			d.Reset()
			_, _ = d.WriteString(t.eps[i].id)
			_, _ = d.Write([]byte{'#', byte(v), byte(v >> 8)})
			pts = append(pts, point{d.Sum64(), uint32(i)})
		}
	}
	for i := range r.share {
		r.share[i] = t.weights[i] / sum
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	r.hashes = make([]uint64, len(pts))
	r.owners = make([]uint32, len(pts))
	for k, p := range pts {
		r.hashes[k], r.owners[k] = p.h, p.owner
	}
	r.regLoad = t.eps[0].total
	return r
}

func (r *ring) pick(t *Table, key uint64, avoid []*Endpoint) (*Endpoint, error) {
	start, _ := slices.BinarySearch(r.hashes, key)
	total := float64(r.regLoad.Load() + 1)
	n := len(r.hashes)
	for k := 0; k < n; k++ {
		idx := start + k
		if idx >= n {
			idx -= n
		}
		o := r.owners[idx]
		if t.eligible(o, avoid) && float64(t.live[o].s.inflight.Load()) < r.factor*total*r.share[o]+1 {
			return t.eps[o], nil
		}
	}
	return t.scan(int(r.owners[start%n]), avoid)
}
