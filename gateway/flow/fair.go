package flow

import (
	"fmt"
	"strings"
)

// Class is a priority class; a lower value is served first.
type Class uint8

const (
	// Interactive requests (chat, completions a person waits for).
	Interactive Class = iota
	// Batch requests (offline jobs), served only when no interactive
	// request waits.
	Batch
	// NumClasses is the number of classes.
	NumClasses
)

func (c Class) String() string {
	switch c {
	case Interactive:
		return "interactive"
	case Batch:
		return "batch"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// ParseClass parses a class name as String prints it (case-insensitive),
// for a header or a tenant's configuration.
func ParseClass(s string) (Class, error) {
	switch strings.ToLower(s) {
	case "interactive":
		return Interactive, nil
	case "batch":
		return Batch, nil
	}
	return 0, fmt.Errorf("flow: unknown class %q (want interactive or batch)", s)
}

// Item is one queued entry of a Fair.
type Item[T any] struct {
	// Value is what was pushed.
	Value T

	cost       int
	seq        uint64 // push order
	class      Class
	tenant     *tenant[T]
	prev, next *Item[T] // in the tenant's FIFO
	queued     bool
}

// tenant is one tenant's FIFO in one class and its place in the class's
// round.
type tenant[T any] struct {
	name       string
	head, tail *Item[T]
	n          int
	deficit    int
	inTurn     bool       // its quantum for the current turn was added
	prev, next *tenant[T] // in the class's ring of tenants with items
}

type fairClass[T any] struct {
	tenants map[string]*tenant[T]
	ring    *tenant[T] // the tenant whose turn it is; nil when empty
	n       int
	newest  *Item[T] // the last pushed item still queued, for displacement
}

// Fair orders queued items: strict priority between classes, deficit
// round robin between tenants within a class, FIFO within a tenant. It is
// not safe for concurrent use. Items are recycled: after Pop or Remove
// returns an item, the caller must not use it once it pushes again.
type Fair[T any] struct {
	quantum int
	classes [NumClasses]fairClass[T]
	n       int
	seq     uint64
	free    []*Item[T]
	spare   []*tenant[T]
}

// NewFair returns an empty Fair whose tenants get quantum cost units per
// turn (at least 1).
func NewFair[T any](quantum int) *Fair[T] {
	f := &Fair[T]{quantum: max(quantum, 1)}
	for c := range f.classes {
		f.classes[c].tenants = make(map[string]*tenant[T])
	}
	return f
}

// Len returns the number of queued items.
func (f *Fair[T]) Len() int { return f.n }

// LenClass returns the number of queued items of class c.
func (f *Fair[T]) LenClass(c Class) int {
	if c >= NumClasses {
		return 0
	}
	return f.classes[c].n
}

// Push queues v for tenant in class c (clamped to the lowest class) with
// the given cost (at least 1) and returns its item.
func (f *Fair[T]) Push(c Class, tenantName string, cost int, v T) *Item[T] {
	if c >= NumClasses {
		c = NumClasses - 1
	}
	fc := &f.classes[c]
	t := fc.tenants[tenantName]
	if t == nil {
		if k := len(f.spare); k > 0 {
			t = f.spare[k-1]
			f.spare = f.spare[:k-1]
		} else {
			t = new(tenant[T])
		}
		*t = tenant[T]{name: tenantName}
		fc.tenants[tenantName] = t
	}
	var it *Item[T]
	if k := len(f.free); k > 0 {
		it = f.free[k-1]
		f.free = f.free[:k-1]
	} else {
		it = new(Item[T])
	}
	f.seq++
	*it = Item[T]{Value: v, cost: max(cost, 1), seq: f.seq, class: c, tenant: t, queued: true}
	if t.tail == nil {
		t.head, t.tail = it, it
		// The tenant joins the round just before the one whose turn it
		// is: last in line.
		if fc.ring == nil {
			t.prev, t.next = t, t
			fc.ring = t
		} else {
			t.next, t.prev = fc.ring, fc.ring.prev
			fc.ring.prev.next = t
			fc.ring.prev = t
		}
	} else {
		it.prev = t.tail
		t.tail.next = it
		t.tail = it
	}
	t.n++
	fc.n++
	f.n++
	fc.newest = it
	return it
}

// Pop removes and returns the next value and its class: from the highest
// class with items, the tenant whose turn it is while its deficit covers
// its head's cost. ok is false when nothing is queued.
func (f *Fair[T]) Pop() (v T, c Class, ok bool) {
	for k := range f.classes {
		fc := &f.classes[k]
		if fc.n == 0 {
			continue
		}
		for {
			t := fc.ring
			if !t.inTurn {
				t.deficit += f.quantum
				t.inTurn = true
			}
			if it := t.head; it.cost <= t.deficit {
				t.deficit -= it.cost
				v = it.Value
				f.unlink(fc, it)
				return v, Class(k), true
			}
			// Its deficit does not cover its head: the turn passes.
			t.inTurn = false
			fc.ring = t.next
		}
	}
	return v, 0, false
}

// Remove takes a queued item out (a waiter that gave up, or one
// displaced) and reports whether it was queued. An item is a handle only
// while queued: Pop and Remove recycle it.
func (f *Fair[T]) Remove(it *Item[T]) bool {
	if it == nil || !it.queued {
		return false
	}
	f.unlink(&f.classes[it.class], it)
	return true
}

// Newest returns the most recently pushed item still queued in the
// lowest class below c that has items, or nil: the one a more urgent
// arrival displaces when the queue is full.
func (f *Fair[T]) Newest(c Class) *Item[T] {
	for k := int(NumClasses) - 1; k > int(c); k-- {
		fc := &f.classes[k]
		if fc.n == 0 {
			continue
		}
		if fc.newest != nil && fc.newest.queued {
			return fc.newest
		}
		// The newest was taken out: the latest tail among the tenants.
		var best *Item[T]
		for _, t := range fc.tenants {
			if t.tail != nil && (best == nil || t.tail.seq > best.seq) {
				best = t.tail
			}
		}
		return best
	}
	return nil
}

// unlink takes it out of its tenant's FIFO and the tenant out of the
// round when it empties, and recycles it.
func (f *Fair[T]) unlink(fc *fairClass[T], it *Item[T]) {
	t := it.tenant
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		t.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		t.tail = it.prev
	}
	t.n--
	fc.n--
	f.n--
	if fc.newest == it {
		fc.newest = nil
	}
	if t.n == 0 {
		// Out of the round, its deficit forfeited (DRR: an idle flow
		// keeps no credit).
		if t.next == t {
			fc.ring = nil
		} else {
			t.prev.next, t.next.prev = t.next, t.prev
			if fc.ring == t {
				fc.ring = t.next
			}
		}
		delete(fc.tenants, t.name)
		*t = tenant[T]{}
		f.spare = append(f.spare, t)
	}
	var zero T
	it.Value, it.queued, it.prev, it.next, it.tenant = zero, false, nil, nil, nil
	f.free = append(f.free, it)
}
