package balancer

import (
	"fmt"
	"math/bits"
	"testing"
	"time"
)

// benchPoints returns prefix points shaped like gateway/prefix's for a
// chat prompt: a shared system prompt of sysLen characters (family
// fam), then the conversation's turns, each turnLen long; block points at
// the first 8 blocks of 64 characters and 4 per octave after, and a point
// at each message end.
func benchPoints(fam, conv uint64, sysLen, turnLen uint32, turns int) *AffinityRequest {
	end := sysLen + uint32(turns)*turnLen
	r := &AffinityRequest{Size: end}
	at := func(p uint32) uint64 {
		if p <= sysLen {
			return mix(fam<<40 ^ uint64(p))
		}
		return mix(conv<<20 ^ uint64(p) ^ 0xc0ffee)
	}
	msg := sysLen
	for b := uint32(1); b*64 <= end; b++ {
		for msg <= end && msg < b*64 {
			r.Hashes, r.Ends = append(r.Hashes, at(msg)^1), append(r.Ends, msg)
			msg += turnLen
		}
		if n := uint(b); n < 8 || n&(1<<(bits.Len(n)-3)-1) == 0 {
			r.Hashes, r.Ends = append(r.Hashes, at(b*64)), append(r.Ends, b*64)
		}
	}
	for msg <= end {
		r.Hashes, r.Ends = append(r.Hashes, at(msg)^1), append(r.Ends, msg)
		msg += turnLen
	}
	return r
}

// BenchmarkAffinityPick measures Affinity.Pick on a 10,000-node route
// (the default two-choice table under it) whose index holds 100,000
// conversations: a follow-up turn (a prefix hit), a new conversation of a
// shared system prompt (cached everywhere: placed by load), a prompt
// nothing matches, a session and an adapter; next to the table's own pick.
func BenchmarkAffinityPick(b *testing.B) {
	const nodes, convs = 10_000, 100_000
	bl, err := NewBuilder(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	aff, err := NewAffinity(AffinityConfig{Entries: 1 << 22})
	if err != nil {
		b.Fatal(err)
	}
	ns := loadedNodes(nodes, 3)
	tb := bl.Build(ns, t0)
	aff.Update(tb, t0, func(id string) (NodeReport, bool) {
		if id == ns[17].ID || id == ns[4242].ID {
			return NodeReport{Adapters: []string{"sql"}, HitRate: -1}, true
		}
		return NodeReport{}, false
	})
	// Fill the index: every conversation's first two turns, with the
	// owner's Tick (every second in a gateway) growing the index.
	for c := uint64(0); c < convs; c++ {
		for turn := 1; turn <= 2; turn++ {
			if _, err := aff.Pick(tb, benchPoints(c%8, c, 6000, 1200, turn), nil); err != nil {
				b.Fatal(err)
			}
		}
		if c%1000 == 0 {
			aff.Tick(t0)
		}
	}
	aff.Tick(t0.Add(10 * time.Second))
	const ring = 4096
	cases := []struct {
		name string
		reqs []*AffinityRequest
	}{
		{"follow-up", make([]*AffinityRequest, ring)},
		{"new-conversation", make([]*AffinityRequest, ring)},
		{"no-match", make([]*AffinityRequest, ring)},
		{"session", make([]*AffinityRequest, ring)},
		{"adapter", make([]*AffinityRequest, ring)},
	}
	for k := range ring {
		c := uint64(k * 24)
		cases[0].reqs[k] = benchPoints(c%8, c, 6000, 1200, 3)
		cases[1].reqs[k] = benchPoints(uint64(k%8), convs+uint64(k), 6000, 1200, 1)
		cases[2].reqs[k] = benchPoints(100+uint64(k), 1<<30+uint64(k), 6000, 1200, 2)
		cases[3].reqs[k] = &AffinityRequest{Session: uint64(k%512 + 1)}
		cases[4].reqs[k] = &AffinityRequest{Adapter: AffinityKey([]byte("sql"))}
	}
	points := 0
	for _, r := range cases[0].reqs {
		points += len(r.Hashes)
	}
	b.Logf("%d nodes, %d conversations indexed in %d entries; a follow-up has %d points on average", nodes, convs, aff.idx.entries(), points/ring)
	b.Run("table-pick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tb.Pick(0); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if _, err := aff.Pick(tb, c.reqs[k%ring], nil); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := 0
				for pb.Next() {
					if _, err := aff.Pick(tb, c.reqs[k%ring], nil); err != nil {
						b.Error(err)
						return
					}
					k += 7
				}
			})
		})
	}
	var reasons [4]int
	for _, r := range cases[0].reqs[:256] {
		ch, _ := aff.Pick(tb, r, nil)
		reasons[ch.Reason]++
	}
	if reasons[ByPrefix] < 200 {
		b.Fatalf("follow-ups picked by %v (load, prefix, session, adapter): the index lost them", reasons)
	}
	_ = fmt.Sprint()
}

// BenchmarkAffinityIndexGrow measures one growth of the index from a
// quarter of the default size to the default size, half full of live
// entries: the pause of the table owner's Tick that does it (picks do not
// wait for it).
func BenchmarkAffinityIndexGrow(b *testing.B) {
	const maxAge = 600
	fill := newAffIndex(1<<20, maxAge)
	for fill.entries() < 1<<18 {
		for k := range uint64(1 << 17) {
			fill.insert(affTag(mix(k)), uint32(k%64), 1)
		}
		fill.grow(1)
	}
	for k := range uint64(1 << 17) {
		fill.insert(affTag(mix(k)), uint32(k%64), 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		x := newAffIndex(1<<20, maxAge)
		x.tab.Store(fill.tab.Load())
		x.grow(1)
		if x.entries() != 1<<20 {
			b.Fatalf("grew to %d entries", x.entries())
		}
	}
}
