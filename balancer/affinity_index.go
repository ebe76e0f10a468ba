package balancer

import "sync/atomic"

// affIndex is Affinity's memory of where requests went: a fixed table of
// entries (tag, node, time), four to a bucket of one cache line, the
// bucket chosen by the tag. A tag is a prefix point, a session or a LoRA
// adapter (each hashed with its own domain). Inserting into a full bucket
// replaces its oldest entry, so the table holds the most recent entries of
// every bucket: bounded memory, least recently used out first. Lookups
// ignore entries older than their node's horizon.
//
// Reads and writes are lock-free and race with each other: an entry is
// two atomic words, and a reader may see a tag with the node of the entry
// it replaced, for an instant. Affinity is a hint bounded by load, so such
// a read costs at worst one less useful pick.
type affIndex struct {
	buckets []affBucket
	mask    uint64
}

// affWays is the number of entries in a bucket: 4 entries of 16 bytes fill
// one 64-byte cache line.
const affWays = 4

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

func newAffIndex(entries int) affIndex {
	n := 1
	for n*affWays < entries {
		n <<= 1
	}
	return affIndex{buckets: make([]affBucket, n), mask: uint64(n - 1)}
}

// affTag turns a hash into a tag: never 0, which marks an empty entry.
func affTag(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

func (x *affIndex) bucket(tag uint64) *affBucket {
	return &x.buckets[mix(tag)&x.mask]
}

// affHit is one entry found for a tag.
type affHit struct {
	aid   uint32
	stamp uint32
}

// find returns the entries of tag, at most affWays.
func (x *affIndex) find(tag uint64) (hits [affWays]affHit, n int) {
	b := x.bucket(tag)
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

// insert records that tag went to node aid at now. An entry for the same
// tag and node is refreshed (and left alone when already current, so a hot
// tag costs no writes); otherwise the emptiest or oldest entry of the
// bucket is replaced.
func (x *affIndex) insert(tag uint64, aid, now uint32) {
	b := x.bucket(tag)
	meta := uint64(aid)<<32 | uint64(now)
	empty, victim, worst := -1, 0, uint32(0)
	for k := range b.e {
		e := &b.e[k]
		t := e.tag.Load()
		m := e.meta.Load()
		switch {
		case t == tag && uint32(m>>32) == aid:
			if m != meta {
				e.meta.Store(meta)
			}
			return
		case t == 0:
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
