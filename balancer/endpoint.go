package balancer

import (
	"math"
	"sync/atomic"
	"time"
)

// Exclusion is a bit set of reasons a node is kept out of picks without a
// table rebuild.
type Exclusion uint32

const (
	// ExcludeBreaker: the node's circuit breaker is open or half-open.
	ExcludeBreaker Exclusion = 1 << iota
	// ExcludeDraining: the node answered that it is draining (e.g. a 503
	// with a draining marker) before discovery said so.
	ExcludeDraining
	// ExcludeAdmin: an operator took the node out.
	ExcludeAdmin
	// ExcludeOverload: the node is at its concurrency limit.
	ExcludeOverload
	// ExcludeHealth: the gateway's active health check failed on the node,
	// or outlier detection ejected it (gateway/health owns this bit).
	ExcludeHealth
)

// excludeFailing are the exclusions that say the node is failing: while
// one holds, what the node shows says nothing of its speed (Build).
const excludeFailing = ExcludeBreaker | ExcludeHealth

// noCopy makes `go vet` flag copies of structs that embed it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Endpoint is the long-lived live state of one node of one route: in-flight
// requests, exclusions and the last published weight. It is shared by every
// table version of its route, so a rebuild does not reset it.
//
// Its methods are safe for concurrent use. An Endpoint must not be copied.
type Endpoint struct {
	_ noCopy

	// Immutable after creation.
	id    string
	addr  Address
	value any
	total *atomic.Int64 // the registry's in-flight sum

	// Owned by the registry's owner.
	seen     uint64    // registry generation that last listed this endpoint
	since    time.Time // when the endpoint joined; zero for the first build
	lastDone uint32    // live.done at the last build
	obs      Observed  // decayed observations, see Builder.observe
	weighed  float64   // the weigher's output at the last build, before KV pressure
	unready  time.Time // first build of the node's current absence from Ready; zero when Ready

	// live points at the endpoint's exclusion bits and in-flight count,
	// which sit in a dense array of the registry so that picks, which read
	// them for many nodes, touch few cache lines.
	live *slot

	// Atomic.
	weight atomic.Uint64 // float64 bits of the last published weight

	// affinity is the node's id in its route's Affinity plus one (0: not
	// seen by Affinity.Update yet); see affinity.go.
	affinity atomic.Uint32
}

// slot is an endpoint's live state that pickers read, packed in 16 bytes
// so that one cache line holds four nodes' and a pick's comparison of two
// candidates costs one memory access each.
type slot struct {
	excluded atomic.Uint32
	inflight atomic.Int32
	done     atomic.Uint32 // requests completed (Complete), wrapping
	weight   atomic.Uint32 // float32 bits of the newest table's weight
}

// loadWeight returns the node's weight in the newest table. A pick from an
// older table (a request that loaded it just before a swap) compares the
// newer weights, which is harmless: they are the better estimate.
func (s *slot) loadWeight() float64 { return float64(math.Float32frombits(s.weight.Load())) }

// ID returns the node id.
func (e *Endpoint) ID() string { return e.id }

// Addr returns the node's address.
func (e *Endpoint) Addr() Address { return e.addr }

// Value returns what the registry's constructor attached to the endpoint
// (for example the gateway's connection pool for the node).
func (e *Endpoint) Value() any { return e.value }

// Acquire counts a request as in flight on the endpoint. Every Acquire must
// be followed by exactly one Release.
func (e *Endpoint) Acquire() {
	e.live.inflight.Add(1)
	e.total.Add(1)
}

// Release ends a request started with Acquire.
func (e *Endpoint) Release() {
	e.live.inflight.Add(-1)
	e.total.Add(-1)
}

// Complete ends a request started with Acquire that the node completed
// (it answered, and not with an overload or server error). It is Release
// plus a count the builder turns into the node's observed throughput
// (Observed). Every Acquire must be followed by exactly one Release or
// Complete.
func (e *Endpoint) Complete() {
	e.live.done.Add(1)
	e.live.inflight.Add(-1)
	e.total.Add(-1)
}

// Completed returns how many requests ended with Complete on the endpoint
// (a counter that wraps at 2^32).
func (e *Endpoint) Completed() uint32 { return e.live.done.Load() }

// InFlight returns the requests in flight on the endpoint.
func (e *Endpoint) InFlight() int64 { return int64(e.live.inflight.Load()) }

// Exclude adds reason to the endpoint's exclusions; picks skip it at once.
func (e *Endpoint) Exclude(reason Exclusion) { e.live.excluded.Or(uint32(reason)) }

// Include removes reason from the endpoint's exclusions.
func (e *Endpoint) Include(reason Exclusion) { e.live.excluded.And(^uint32(reason)) }

// Exclusions returns the current exclusion reasons; zero means none.
func (e *Endpoint) Exclusions() Exclusion { return Exclusion(e.live.excluded.Load()) }

// Weight returns the weight the endpoint had in the newest table built.
func (e *Endpoint) Weight() float64 { return math.Float64frombits(e.weight.Load()) }

func (e *Endpoint) setWeight(w float64) {
	e.weight.Store(math.Float64bits(w))
	e.live.weight.Store(math.Float32bits(float32(w)))
}

// Registry holds the endpoints of one route across table versions. It
// belongs to the goroutine that builds the route's tables and is not safe
// for concurrent use; the endpoints it hands out are.
type Registry struct {
	byID     map[string]*Endpoint
	slots    [][]slot // chunks of live state, never moved
	free     []freed  // slots of forgotten endpoints, oldest first
	newValue func(id string, addr Address) any
	onGone   func(*Endpoint)
	inflight atomic.Int64
	gen      uint64    // current generation (one per table build)
	touched  int       // distinct endpoints listed in this generation
	joinedAt time.Time // since of endpoints created in this generation
	now      time.Time // the time of the current generation
}

// NewRegistry returns an empty registry. newValue, if not nil, is called
// once per new endpoint and its result is returned by Endpoint.Value.
// onGone, if not nil, is called for each endpoint the registry forgets (its
// node left the route or changed address), so the owner can close what it
// attached; requests picked from older tables may still be using it.
func NewRegistry(newValue func(id string, addr Address) any, onGone func(*Endpoint)) *Registry {
	return &Registry{byID: make(map[string]*Endpoint), newValue: newValue, onGone: onGone}
}

// InFlight returns the requests in flight over all of the route's endpoints.
func (r *Registry) InFlight() int64 { return r.inflight.Load() }

// endpoint returns the endpoint for (id, addr), creating it if needed. A
// node whose address changed gets a fresh endpoint. dup reports that id was
// already listed in this generation; the caller then ignores the node.
func (r *Registry) endpoint(id string, addr Address) (e *Endpoint, dup bool) {
	old, ok := r.byID[id]
	if ok && old.seen == r.gen {
		return old, true
	}
	if ok && old.addr == addr {
		old.seen = r.gen
		r.touched++
		return old, false
	}
	if ok {
		r.forget(old)
	}
	e = &Endpoint{id: id, addr: addr, total: &r.inflight, seen: r.gen, since: r.joinedAt, live: r.newSlot()}
	e.lastDone = e.live.done.Load() // a reused slot keeps its count
	r.touched++
	if r.newValue != nil {
		e.value = r.newValue(id, addr)
	}
	r.byID[id] = e
	return e, false
}

// touch lists e, known to be in the registry, in this generation.
func (r *Registry) touch(e *Endpoint) {
	e.seen = r.gen
	r.touched++
}

// begin starts a generation: endpoints not listed again before retain are
// forgotten by it. Endpoints created in it joined at now, or long ago when
// stamp is false.
func (r *Registry) begin(now time.Time, stamp bool) {
	r.gen++
	r.touched = 0
	r.now = now
	r.joinedAt = time.Time{}
	if stamp {
		r.joinedAt = now
	}
}

// retain forgets the endpoints not listed since begin.
func (r *Registry) retain() {
	if r.touched == len(r.byID) {
		return
	}
	for id, e := range r.byID {
		if e.seen != r.gen {
			delete(r.byID, id)
			r.forget(e)
		}
	}
}

// Len returns the number of endpoints the registry holds.
func (r *Registry) Len() int { return len(r.byID) }

// slotChunk is how many slots the registry allocates at a time.
const slotChunk = 4096

// slotQuarantine is how long a forgotten endpoint's slot rests before
// another endpoint gets it. A request picked from an older table may still
// release it, and a breaker callback may still exclude or include it, for
// a moment after the node left; waiting, and reusing only a slot with
// nothing in flight, keeps that from touching the slot's next owner.
const slotQuarantine = time.Minute

// freed is a slot waiting out its quarantine.
type freed struct {
	s  *slot
	at time.Time
}

// newSlot returns a cleared slot for a new endpoint, reusing one whose
// quarantine is over.
func (r *Registry) newSlot() *slot {
	if len(r.free) > 0 {
		f := r.free[0]
		if !r.now.IsZero() && r.now.Sub(f.at) >= slotQuarantine && f.s.inflight.Load() == 0 {
			r.free = r.free[1:]
			f.s.excluded.Store(0)
			return f.s
		}
	}
	if len(r.slots) == 0 || len(r.slots[len(r.slots)-1]) == slotChunk {
		r.slots = append(r.slots, make([]slot, 0, slotChunk))
	}
	last := &r.slots[len(r.slots)-1]
	*last = (*last)[:len(*last)+1]
	return &(*last)[len(*last)-1]
}

// forget runs onGone for e and queues its slot for reuse.
func (r *Registry) forget(e *Endpoint) {
	if r.onGone != nil {
		r.onGone(e)
	}
	r.free = append(r.free, freed{e.live, r.now})
}
