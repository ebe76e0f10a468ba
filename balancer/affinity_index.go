package balancer

import (
	"sync"
	"sync/atomic"
)

// affIndex is Affinity's memory of where requests went: a table of
// entries (tag, node, time), four to a bucket of one cache line, the
// bucket chosen by the tag. A tag is a prefix point, a session or a LoRA
// adapter (each hashed with its own domain). Inserting into a full bucket
// replaces its oldest entry, so the table holds the most recent entries of
// every bucket: bounded memory, least recently used out first. Lookups
// ignore entries older than their node's horizon.
//
// The table costs nothing until the first insert, which makes a small one
// (affMinEntries); the table owner grows it (grow, from Tick and Update)
// fourfold while a quarter or more of a sample of its entries are
// younger than MaxAge (above that, four-way buckets start to overflow),
// up to the configured size. So a route without traffic holds
// no table and a quiet one a small table, while a busy one reaches the
// configured size within a few ticks. Picks never allocate after the first
// insert, never wait for a growth and never take a lock.
//
// Reads and writes are lock-free and race with each other: an entry is
// two atomic words, and a reader may see a tag with the node of the entry
// it replaced, for an instant. Affinity is a hint bounded by load, so such
// a read costs at worst one less useful pick. A growth copies the live
// entries into the larger table and then publishes it; inserts made into
// the old table meanwhile (and by picks still holding it) are lost, which
// costs those requests' followers their affinity, nothing more.
type affIndex struct {
	tab        atomic.Pointer[affTable] // nil until the first insert
	maxBuckets int                      // the configured size, in buckets
	maxAge     uint32                   // seconds an entry can count (MaxAge)

	growMu sync.Mutex // held while growing (by Tick or Update; never by picks)
	scan   int        // the bucket the next sample starts at; guarded by growMu
}

// affTable is one size of affIndex's table. Its slice never changes; a
// growth makes a new table.
type affTable struct {
	buckets []affBucket
	mask    uint64
}

// affWays is the number of entries in a bucket: 4 entries of 16 bytes fill
// one 64-byte cache line.
const affWays = 4

// affMinEntries is the size of the table made at the first insert
// (64 KiB: a few hundred conversations before the owner's next tick),
// affGrowth the factor it grows by and affSample the buckets a growth
// check reads.
const (
	affMinEntries = 4096
	affGrowth     = 4
	affSample     = 256
)

type affBucket struct {
	e [affWays]affEntry
}

// affEntry is one remembered (tag, node, time). meta holds the node's
// affinity id in its high 32 bits and the time (seconds on the Affinity's
// clock) in its low 32. A zero tag marks an empty entry.
type affEntry struct {
	tag  atomic.Uint64
	meta atomic.Uint64
}

// newAffIndex returns an empty index that grows up to entries (rounded up
// to a power of two) and counts entries younger than maxAge seconds as
// live. It allocates no table.
func newAffIndex(entries int, maxAge uint32) affIndex {
	n := 1
	for n*affWays < entries {
		n <<= 1
	}
	return affIndex{maxBuckets: n, maxAge: maxAge}
}

func newAffTable(buckets int) *affTable {
	return &affTable{buckets: make([]affBucket, buckets), mask: uint64(buckets - 1)}
}

// entries returns the size of the present table in entries; 0 before the
// first insert.
func (x *affIndex) entries() int {
	if t := x.tab.Load(); t != nil {
		return len(t.buckets) * affWays
	}
	return 0
}

// affTag turns a hash into a tag: never 0, which marks an empty entry.
func affTag(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

func (t *affTable) bucket(tag uint64) *affBucket {
	return &t.buckets[mix(tag)&t.mask]
}

// affHit is one entry found for a tag.
type affHit struct {
	aid   uint32
	stamp uint32
}

// find returns the entries of tag, at most affWays.
func (x *affIndex) find(tag uint64) (hits [affWays]affHit, n int) {
	t := x.tab.Load()
	if t == nil {
		return hits, 0
	}
	b := t.bucket(tag)
	for k := range b.e {
		e := &b.e[k]
		if e.tag.Load() != tag {
			continue
		}
		m := e.meta.Load()
		hits[n] = affHit{aid: uint32(m >> 32), stamp: uint32(m)}
		n++
	}
	return hits, n
}

// insert records that tag went to node aid at now. The first insert makes
// the table.
func (x *affIndex) insert(tag uint64, aid, now uint32) {
	t := x.tab.Load()
	if t == nil {
		t = newAffTable(min(x.maxBuckets, affMinEntries/affWays))
		if !x.tab.CompareAndSwap(nil, t) {
			t = x.tab.Load() // another pick made it first
		}
	}
	t.put(tag, uint64(aid)<<32|uint64(now), now)
}

// put records the entry (tag, meta) at now. An entry for the same tag and
// node is refreshed (and left alone when already current, so a hot tag
// costs no writes); otherwise the emptiest or oldest entry of the bucket
// is replaced.
func (t *affTable) put(tag, meta uint64, now uint32) {
	b := t.bucket(tag)
	aid := uint32(meta >> 32)
	empty, victim, worst := -1, 0, uint32(0)
	for k := range b.e {
		e := &b.e[k]
		et := e.tag.Load()
		m := e.meta.Load()
		switch {
		case et == tag && uint32(m>>32) == aid:
			if m != meta {
				e.meta.Store(meta)
			}
			return
		case et == 0:
			if empty < 0 {
				empty = k
			}
		case now-uint32(m) >= worst:
			victim, worst = k, now-uint32(m)
		}
	}
	if empty >= 0 {
		victim = empty
	}
	e := &b.e[victim]
	e.tag.Store(0) // readers skip the entry while it changes hands
	e.meta.Store(meta)
	e.tag.Store(tag)
}

// grow checks a sample of the table (affSample buckets, the next ones
// after the last check's) and, when a quarter or more of its entries are
// younger than maxAge at now, replaces the table by one affGrowth times
// larger (at most the configured size) holding every live entry. It
// returns at once while another call grows, and does nothing before the
// first insert or at the configured size. Only the table owner calls it
// (from Tick and Update): it allocates, and reads the whole table when it
// grows.
func (x *affIndex) grow(now uint32) {
	if !x.growMu.TryLock() {
		return
	}
	defer x.growMu.Unlock()
	old := x.tab.Load()
	if old == nil || len(old.buckets) >= x.maxBuckets {
		return
	}
	n := len(old.buckets)
	live, seen := 0, 0
	for k := range min(affSample, n) {
		b := &old.buckets[(x.scan+k)&(n-1)]
		for w := range b.e {
			seen++
			if b.e[w].tag.Load() != 0 && x.live(uint32(b.e[w].meta.Load()), now) {
				live++
			}
		}
	}
	x.scan = (x.scan + affSample) & (n - 1)
	if 4*live < seen {
		return
	}
	t := newAffTable(min(x.maxBuckets, n*affGrowth))
	// An old bucket's entries all go to new buckets with the same low
	// bits, which no other old bucket shares: none is pushed out.
	for k := range old.buckets {
		b := &old.buckets[k]
		for w := range b.e {
			tag, m := b.e[w].tag.Load(), b.e[w].meta.Load()
			if tag != 0 && x.live(uint32(m), now) {
				t.put(tag, m, now)
			}
		}
	}
	x.tab.Store(t)
}

// live reports whether an entry stamped at stamp may still count at now:
// it is at most maxAge old, or newer than now (a pick that read a later
// clock than the grower).
func (x *affIndex) live(stamp, now uint32) bool {
	d := now - stamp
	return d <= x.maxAge || int32(d) < 0
}
