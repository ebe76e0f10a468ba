package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Table is an immutable routing snapshot of one route: its nodes, their
// weights and the picker's precomputed schedule. Load it once per request
// from an atomic.Pointer[Table] and use that snapshot for the whole request,
// retries included.
//
// Pick and the accessors are safe for concurrent use. A Table is never
// changed after Build returns it, except for the picker's own atomic
// counters.
type Table struct {
	version uint64
	built   time.Time
	policy  Policy

	info    []nodeInfo  // every node given to Build; ready ones first
	eps     []*Endpoint // parallel to info
	live    []ref       // parallel to info: eps[i].live and the node's aged queue
	weights []float64   // parallel to info; 0 for nodes that are not ready
	ready   int         // nodes[:ready] are Ready and schedulable
	picker  picker
}

// ref is a table's handle on node i's live state, with the engine queue
// the table counts for it (queueTerm at build time; 0 when unknown, stale
// or not Ready). Keeping the queue next to the pointer, in 16 bytes, means
// a pick reads it without touching another cache line.
type ref struct {
	s     *slot
	queue float32
	_     uint32
}

// picker chooses an eligible endpoint among t.eps[:t.ready]. It must not
// block or allocate, and returns a *NoEndpointError when nothing is
// eligible.
type picker interface {
	pick(t *Table, key uint64, avoid []*Endpoint) (*Endpoint, error)
}

// Pick returns an eligible endpoint: a Ready node with no exclusion. key
// matters only to hashing policies (pass e.g. a hash of the session id);
// others ignore it. With nothing eligible it returns a *NoEndpointError,
// which matches ErrNoEndpoint.
func (t *Table) Pick(key uint64) (*Endpoint, error) {
	return t.picker.pick(t, key, nil)
}

// PickAvoiding is Pick that also skips the endpoints in avoid, for a retry
// on a different node. avoid is only read.
func (t *Table) PickAvoiding(key uint64, avoid []*Endpoint) (*Endpoint, error) {
	return t.picker.pick(t, key, avoid)
}

// Version returns the table's version, counted by its Builder from 1.
func (t *Table) Version() uint64 { return t.version }

// Built returns the time the table was built for.
func (t *Table) Built() time.Time { return t.built }

// Policy returns the table's picking policy.
func (t *Table) Policy() Policy { return t.policy }

// Len returns the number of nodes in the table, ready or not.
func (t *Table) Len() int { return len(t.info) }

// Ready returns the number of Ready nodes.
func (t *Table) Ready() int { return t.ready }

// Node returns node i, 0 <= i < Len(), as given to Build (its times in
// UTC, without a monotonic reading; Running, Waiting and KVCache to float32
// precision), with Since set for a node that joined
// after the route's first table or came back to Ready after more than a
// minute away (its slow start counts from then).
func (t *Table) Node(i int) Node {
	in := &t.info[i]
	return Node{
		ID: t.eps[i].id, Addr: t.eps[i].addr, Capacity: in.capacity, State: in.state,
		Load: Load{
			Utilisation: in.utilisation, Concurrency: in.concurrency,
			Running: float64(in.running), Waiting: float64(in.waiting), KVCache: float64(in.kvCache),
			SampledAt: fromNanos(in.sampledAt),
		},
		Since: fromNanos(in.since),
	}
}

// Endpoint returns node i's endpoint.
func (t *Table) Endpoint(i int) *Endpoint { return t.eps[i] }

// Weight returns node i's weight in this table (0 unless Ready), KV
// pressure included.
func (t *Table) Weight(i int) float64 { return t.weights[i] }

// Queue returns the engine queue a two-choice pick adds to node i's
// in-flight count in this table: its reported waiting requests less those
// that must be this gateway's own, aged by the sample's age at build time
// (Config.QueueHalfLife); 0 when unknown, stale or not Ready.
func (t *Table) Queue(i int) float64 { return float64(t.live[i].queue) }

// eligible reports whether node i may be picked.
func (t *Table) eligible(i uint32, avoid []*Endpoint) bool {
	if t.live[i].s.excluded.Load() != 0 {
		return false
	}
	for _, a := range avoid {
		if a == t.eps[i] {
			return false
		}
	}
	return true
}

// scan returns the first eligible endpoint among the ready ones starting at
// from, or the typed error. It is the last resort of every picker.
func (t *Table) scan(from int, avoid []*Endpoint) (*Endpoint, error) {
	n := t.ready
	for k := 0; k < n; k++ {
		i := from + k
		if i >= n {
			i -= n
		}
		if t.eligible(uint32(i), avoid) {
			return t.eps[i], nil
		}
	}
	return nil, &NoEndpointError{Nodes: len(t.info), Ready: t.ready}
}

// Config configures a Builder. The zero value is usable: blocked SWRR with
// two choices over ThroughputWeigher's weights.
type Config struct {
	// Policy is the picking policy. Default SWRR.
	Policy Policy
	// Weigher computes weights. Default ThroughputWeigher{}.
	Weigher Weigher
	// BlockSize is the most nodes in one SWRR block. Default 8; at most
	// 256. Inside a block picks follow nginx's sequence exactly; larger
	// blocks cost more to build (period × block size per block).
	BlockSize int
	// LoadBound bounds single-choice blocked SWRR (Choices 1) by live
	// in-flight counts: a scheduled
	// node already holding more than LoadBound × its weighted share of the
	// route's in-flight requests (plus one) is passed over for the next
	// scheduled one, up to 8 times, after which the least loaded of those
	// seen is taken. Weights are set every few seconds from one-second
	// samples and cannot see a queue building in between; the bound can
	// (bench/results/policies-analysis.md). Default 1.25; negative turns
	// it off (plain nginx semantics, as static-swrr and seed-swrr use);
	// otherwise at least 1. Two choices do not use it.
	LoadBound float64
	// Choices is how many scheduled nodes blocked SWRR weighs per pick.
	// With 2 (the default) it follows its schedule with two cursors and
	// takes, of the two nodes they give, the one with fewer requests per
	// unit of weight (in flight from this gateway, plus the queue its
	// engine reported, aged: QueueHalfLife), the first on a tie: with
	// nothing in flight and no queue reported that is nginx's sequence
	// exactly, and under load a node that has fallen behind is passed over
	// at once instead of after the next rebuild (bench/results/
	// policies-analysis.md and signals.md have the evidence). With 1 a
	// pick is the scheduled node, as in nginx, subject to LoadBound.
	Choices int
	// LoadFactor is the bound of consistent hashing with bounded load: a
	// node takes at most LoadFactor × its weighted share of the route's
	// in-flight requests (plus one). Default 1.25; at least 1.
	LoadFactor float64
	// VirtualNodes is the number of points each node has on the hash ring.
	// Default 40.
	VirtualNodes int
	// QueueHalfLife is how fast the queue a node's engine reported
	// (Load.Waiting) stops counting in two-choice picks as its sample ages:
	// a pick compares (in-flight + waiting × 2^(−age/QueueHalfLife)) per
	// unit of weight, the age taken when the table is built, and a sample
	// older than 10 s counts nothing. Waiting requests that must be this
	// gateway's own (its in-flight beyond Load.Running) are not counted
	// twice. Default DefaultQueueHalfLife (2 s);
	// at most a minute; negative ignores reported queues (in-flight only,
	// as with Waiting unknown).
	QueueHalfLife time.Duration
	// KVPressure is the KV-cache usage (Load.KVCache) above which a node's
	// weight is lowered, linearly to KVFloor of it at a full cache; a sample
	// older than 10 s counts nothing. Default DefaultKVPressure (0.9);
	// negative turns it off; otherwise below 1.
	KVPressure float64
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Policy >= policyCount:
		return fmt.Errorf("balancer: config: policy %d is unknown", c.Policy)
	case c.Choices < 0 || c.Choices > 2:
		return fmt.Errorf("balancer: config: choices %d: must be 1 or 2 (0 for the default 2)", c.Choices)
	case c.BlockSize < 0 || c.BlockSize > 256:
		return fmt.Errorf("balancer: config: block size %d: must be 1..256 (0 for the default 8)", c.BlockSize)
	case c.LoadBound > 0 && c.LoadBound < 1, c.LoadBound != c.LoadBound:
		return fmt.Errorf("balancer: config: load bound %v: must be at least 1 (0 for the default 1.25, negative for none)", c.LoadBound)
	case c.LoadFactor != 0 && !(c.LoadFactor >= 1):
		return fmt.Errorf("balancer: config: load factor %v: must be at least 1", c.LoadFactor)
	case c.VirtualNodes < 0 || c.VirtualNodes > 1000:
		return fmt.Errorf("balancer: config: virtual nodes %d: must be 1..1000 (0 for the default 40)", c.VirtualNodes)
	case c.QueueHalfLife > time.Minute:
		return fmt.Errorf("balancer: config: queue half-life %v: must be at most 1m (0 for the default %v, negative for none)", c.QueueHalfLife, DefaultQueueHalfLife)
	case c.KVPressure >= 1, c.KVPressure != c.KVPressure:
		return fmt.Errorf("balancer: config: KV pressure %v: must be below 1 (0 for the default %v, negative for none)", c.KVPressure, DefaultKVPressure)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Weigher == nil {
		c.Weigher = ThroughputWeigher{}
	}
	if c.Choices == 0 {
		c.Choices = 2
	}
	if c.BlockSize == 0 {
		c.BlockSize = 8
	}
	if c.LoadBound == 0 {
		c.LoadBound = 1.25
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = 1.25
	}
	if c.VirtualNodes == 0 {
		c.VirtualNodes = 40
	}
	if c.QueueHalfLife == 0 {
		c.QueueHalfLife = DefaultQueueHalfLife
	}
	if c.KVPressure == 0 {
		c.KVPressure = DefaultKVPressure
	}
	return c
}

// Builder builds the tables of one route. It belongs to one goroutine (the
// route's table owner) and is not safe for concurrent use; the tables it
// returns are.
type Builder struct {
	cfg     Config
	reg     *Registry
	version uint64

	last *Table // the previous table, whose order speeds up lookups

	// Scratch reused between builds.
	prev    []float64
	obs     []Observed
	scratch []Node // the nodes in table order when the caller's are not
	order   []int32
	joined  []int32
	hold    []int32 // table indexes whose weight must not rise (Build)
}

// NewBuilder returns a builder for the route whose endpoints reg holds.
func NewBuilder(cfg Config, reg *Registry) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = NewRegistry(nil, nil)
	}
	return &Builder{cfg: cfg.withDefaults(), reg: reg}, nil
}

// Registry returns the builder's endpoint registry.
func (b *Builder) Registry() *Registry { return b.reg }

// Build returns a new table for nodes as of now. Nodes with a duplicate ID
// after the first are ignored. Endpoints of nodes no longer listed are
// forgotten (the registry's onGone runs for them). The new weights are
// recorded on the endpoints, and become the previous weights of the next
// build.
func (b *Builder) Build(nodes []Node, now time.Time) *Table {
	b.version++
	t := &Table{version: b.version, built: now, policy: b.cfg.Policy}

	// Order: ready nodes first, keeping the given order within each group.
	// Nodes of the first table count as long-standing: no slow start.
	b.reg.begin(now, b.version > 1)
	order := b.order[:0]   // indexes into nodes, in table order
	identity := true       // order is 0, 1, 2, ...: the nodes copy in one move
	joined := b.joined[:0] // table indexes of nodes that joined after the first table
	t.eps = make([]*Endpoint, 0, len(nodes))
	for pass := 0; pass < 2; pass++ {
		for i := range nodes {
			n := &nodes[i]
			if (n.State == Ready) != (pass == 0) {
				continue
			}
			var e *Endpoint
			if k := len(order); b.last != nil && k < len(b.last.eps) &&
				b.last.eps[k].id == n.ID && b.last.eps[k].addr == n.Addr && b.last.eps[k].seen != b.reg.gen {
				// Same node at the same place as last time: skip the map.
				e = b.last.eps[k]
				b.reg.touch(e)
			} else {
				var dup bool
				if e, dup = b.reg.endpoint(n.ID, n.Addr); dup {
					continue
				}
			}
			if e.noteReady(pass == 0, now) && b.version > 1 {
				e.since = now // back after a long absence: slow start
			}
			if !e.since.IsZero() && now.Sub(e.since) < maxSlowStart {
				joined = append(joined, int32(len(order)))
			}
			identity = identity && i == len(order)
			order = append(order, int32(i))
			t.eps = append(t.eps, e)
		}
		if pass == 0 {
			t.ready = len(order)
		}
	}
	b.order = order
	b.joined = joined
	// The weigher reads the nodes in table order, with Since set for the
	// nodes that joined after the first table (slow start counts from when
	// this route first saw them). Usually that is the caller's slice as it
	// is, and a large build copies no Node: a Node holds strings and
	// times, and copying a million of them per build, write barriers and
	// garbage included, once cost more than all the rest.
	wn := nodes[:len(order)]
	if !identity || sinceMissing(nodes, order, joined, t.eps) {
		b.scratch = slices.Grow(b.scratch[:0], len(order))[:len(order)]
		for k, i := range order {
			b.scratch[k] = nodes[i]
		}
		for _, k := range joined {
			if n := &b.scratch[k]; n.Since.Before(t.eps[k].since) {
				n.Since = t.eps[k].since
			}
		}
		wn = b.scratch
	}
	b.reg.retain()
	b.prev = resize(b.prev, len(order))
	b.obs = slices.Grow(b.obs[:0], len(order))[:len(order)]
	t.live = make([]ref, len(order))
	t.info = make([]nodeInfo, len(order))
	var dt float64
	if b.last != nil {
		dt = now.Sub(b.last.built).Seconds()
	}
	if !(dt > 0) || dt > maxObserveGap.Seconds() {
		dt = 0 // first build, clock step or long pause: nothing to add
	}
	decay := math.Exp2(-dt / ObserveHalfLife.Seconds())
	nowNs := now.UnixNano()
	b.hold = b.hold[:0]
	for i, e := range t.eps {
		n := &wn[i]
		b.prev[i] = e.weighed
		t.live[i].s = e.live
		if Exclusion(e.live.excluded.Load())&excludeFailing != 0 {
			// Out for failing: its observations are frozen and left out
			// of the weigher's fleet-wide rates, so a hung node neither
			// learns nor distorts the others' weights (issue 12).
			e.lastDone = e.live.done.Load()
			b.obs[i] = Observed{}
			b.hold = append(b.hold, int32(i))
		} else {
			if e.live.inflight.Load() > 0 && e.live.done.Load() == e.lastDone {
				b.hold = append(b.hold, int32(i))
			}
			b.obs[i] = e.observe(n, now, dt, decay)
		}
		in := nodeInfo{
			capacity: n.Capacity, utilisation: n.Load.Utilisation, concurrency: n.Load.Concurrency,
			running: float32(n.Load.Running), waiting: float32(n.Load.Waiting), kvCache: float32(n.Load.KVCache),
			sampledAt: nanos(n.Load.SampledAt), since: nanos(n.Since), state: n.State,
		}
		if i < t.ready {
			w := notOwn(n.Load.Waiting, n.Load.Running, e.live.inflight.Load())
			t.live[i].queue = queueTerm(w, in.sampledAt, nowNs, b.cfg.QueueHalfLife)
		}
		t.info[i] = in
	}

	t.weights = make([]float64, len(order))
	b.cfg.Weigher.Weigh(now, wn, b.obs, b.prev, t.weights)
	// A node that holds requests and completed none since the last build,
	// or that is out for failing, has shown no speed: its weight may fall
	// but not rise. Without this a hung node whose load sample goes stale
	// (its agent cannot scrape it) climbs back to its capacity's weight.
	for _, i := range b.hold {
		if p := b.prev[i]; p > 0 && t.weights[i] > p {
			t.weights[i] = p
		}
	}
	for i := range t.weights {
		if i >= t.ready || !(t.weights[i] > 0) {
			t.weights[i] = 0
			if i < t.ready { // a weigher must give ready nodes a weight
				t.weights[i] = 1
			}
		}
		// The weigher's own output is its previous weight next time, so
		// its step cap is not dragged down by a passing KV pressure.
		t.eps[i].weighed = t.weights[i]
		if i < t.ready {
			in := &t.info[i]
			t.weights[i] = max(t.weights[i]*kvFactor(wn[i].Load.KVCache, in.sampledAt, nowNs, b.cfg.KVPressure), math.SmallestNonzeroFloat32)
		}
		t.eps[i].setWeight(t.weights[i])
	}
	t.picker = newPicker(b.cfg, t)
	b.last = t
	return t
}

// nodeInfo is a table's copy of a Node, less what its Endpoint holds (ID,
// address) and with times as Unix nanoseconds: no pointers, so a large
// table costs the garbage collector nothing to scan.
type nodeInfo struct {
	capacity, utilisation, concurrency float64
	sampledAt, since                   int64   // Unix ns; 0 for the zero time
	running, waiting, kvCache          float32 // NaN when unknown; float32 keeps a large table small
	state                              State
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// sinceMissing reports whether a node that joined after the first table,
// or came back after a long absence, has no Since of its own or an older
// one than its endpoint's, so the builder must set it on a copy.
func sinceMissing(nodes []Node, order, joined []int32, eps []*Endpoint) bool {
	for _, k := range joined {
		if nodes[order[k]].Since.Before(eps[k].since) {
			return true
		}
	}
	return false
}

func resize(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// randomStart returns a random counter start, so tables built from the same
// list by different gateways (or by the same one over time) do not herd.
func randomStart() uint64 { return rand.Uint64() >> 1 }
