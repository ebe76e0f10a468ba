package balancer

import (
	"runtime"
	"testing"
	"time"
)

// A route with affinity configured holds no index until a request gives
// it something to remember: making it, listing its nodes, ticking and
// picking requests with nothing to match allocate no table. The first
// insert makes a small table, and it works at once.
func TestAffinityIndexLazy(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := newAffRoute(t, AffinityConfig{}, 1, 2, 3, 4)
	r.aff.Tick(r.now.Add(time.Second))
	for range 10 {
		r.pick(t, &AffinityRequest{Key: 7, Size: 100})
	}
	runtime.ReadMemStats(&after)
	if n := r.aff.idx.entries(); n != 0 {
		t.Fatalf("an unused route's index has %d entries, want none", n)
	}
	// The default size (1 Mi entries) would be 16 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("making an unused route with affinity allocated %d bytes", got)
	}

	c := &conversation{system: 1, id: 1, sysLen: 3000}
	first := r.pick(t, c.request(500))
	if n := r.aff.idx.entries(); n != affMinEntries {
		t.Fatalf("after the first insert the index has %d entries, want %d", n, affMinEntries)
	}
	next := r.pick(t, c.request(500))
	if next.Reason != ByPrefix || next.Endpoint != first.Endpoint {
		t.Fatalf("second turn: %s by %v, want %s by prefix", next.Endpoint.ID(), next.Reason, first.Endpoint.ID())
	}
	session := &AffinityRequest{Session: AffinityKey([]byte("s"))}
	s1 := r.pick(t, session)
	if s2 := r.pick(t, session); s2.Reason != BySession || s2.Endpoint != s1.Endpoint {
		t.Fatalf("session: %s by %v, want %s by session", s2.Endpoint.ID(), s2.Reason, s1.Endpoint.ID())
	}
}

// With traffic the owner's ticks grow the index fourfold at a time up to
// the configured size, never past it, and conversations indexed before
// the growths are still followed after them.
func TestAffinityIndexGrows(t *testing.T) {
	const maxEntries = 1 << 16
	r := newAffRoute(t, AffinityConfig{Entries: maxEntries}, 1, 2, 3, 4)
	var sizes []int
	convs := make([]*conversation, 0, 1500)
	home := map[*conversation]*Endpoint{}
	for id := range uint64(cap(convs)) {
		c := &conversation{system: 100 + id, id: id, sysLen: 3000}
		convs = append(convs, c)
		home[c] = r.pick(t, c.request(500)).Endpoint
		if id%50 == 49 { // the owner's tick
			r.aff.Tick(r.now.Add(time.Duration(id/50) * time.Second))
			if n := r.aff.idx.entries(); len(sizes) == 0 || n != sizes[len(sizes)-1] {
				sizes = append(sizes, n)
			}
		}
	}
	want := []int{affMinEntries, affMinEntries * affGrowth, maxEntries}
	if len(sizes) != len(want) {
		t.Fatalf("sizes %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("sizes %v, want %v", sizes, want)
		}
	}
	for _, c := range convs[:50] {
		if ch := r.pick(t, c.request(200)); ch.Reason != ByPrefix || ch.Endpoint != home[c] {
			t.Fatalf("conversation %d after growing to %d entries: %s by %v, want %s by prefix",
				c.id, r.aff.idx.entries(), ch.Endpoint.ID(), ch.Reason, home[c].ID())
		}
	}
}

// Only live entries make the index grow: a table full of entries older
// than MaxAge stays as it is, and a growth copies every live entry.
func TestAffinityIndexGrowsOnLiveEntries(t *testing.T) {
	const maxAge = 600
	fill := func() (*affIndex, map[uint64]uint32) {
		x := newAffIndex(1<<20, maxAge)
		for k := range uint64(affMinEntries / 2) {
			x.insert(affTag(mix(k)), uint32(k%8), 10)
		}
		held := map[uint64]uint32{} // tag → node, of the entries the table kept
		for k := range uint64(affMinEntries / 2) {
			if hits, n := x.find(affTag(mix(k))); n > 0 {
				held[affTag(mix(k))] = hits[0].aid
			}
		}
		return &x, held
	}
	old, _ := fill()
	old.grow(10 + maxAge + 1)
	if n := old.entries(); n != affMinEntries {
		t.Fatalf("expired entries grew the index to %d entries", n)
	}
	x, held := fill()
	if len(held) < affMinEntries/4 {
		t.Fatalf("only %d of %d entries held", len(held), affMinEntries/2)
	}
	x.grow(10 + maxAge)
	if n := x.entries(); n != affMinEntries*affGrowth {
		t.Fatalf("live entries: index of %d entries, want %d", n, affMinEntries*affGrowth)
	}
	for tag, aid := range held {
		hits, n := x.find(tag)
		if n != 1 || hits[0] != (affHit{aid: aid, stamp: 10}) {
			t.Fatalf("tag %x after growth: %v, want node %d at 10", tag, hits[:n], aid)
		}
	}
}
