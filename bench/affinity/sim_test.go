package affinity

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// smallConfig is a short run on a small fleet.
func smallConfig(policy string) Config {
	c := DefaultConfig()
	c.Fleet.Nodes = 24
	c.Policy = policy
	c.Duration = 90 * time.Second
	c.Warmup = 20 * time.Second
	c.Refresh = 100 * time.Millisecond
	return c
}

func run(t *testing.T, c Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every request that arrives completes, nothing is left on the nodes or
// the balancer, and every policy sees the same traffic.
func TestRunAccountsForEveryRequest(t *testing.T) {
	var digest uint64
	for i, p := range PolicyNames() {
		t.Run(p, func(t *testing.T) {
			r := run(t, smallConfig(p))
			if r.Arrived == 0 || r.Completed != r.Arrived || r.Lost != 0 {
				t.Fatalf("arrived %d completed %d lost %d", r.Arrived, r.Completed, r.Lost)
			}
			if r.Leftover != 0 {
				t.Fatalf("%d requests, blocks or in-flight counts left at the end", r.Leftover)
			}
			if h := r.HitRate(); !(h > 0 && h < 1) {
				t.Fatalf("hit rate %v", h)
			}
			if i == 0 {
				digest = r.Workload
			} else if r.Workload != digest {
				t.Fatal("workload digest differs between policies: not the same traffic")
			}
		})
	}
}

// With flow control the gateway never has more requests on the nodes than
// their limits, batch never more than its share, and the burst loses
// nothing.
func TestFlowControlHoldsLimits(t *testing.T) {
	c := smallConfig("default")
	c.FlowControl, c.Reserve = true, 0.2
	c.Load = 0.7
	c.Burst = &Burst{At: 40 * time.Second, For: 15 * time.Second, Load: 1.3}
	violations := 0
	debugHook = func(s *sim, _ float64) {
		if s.inflight > s.limit || s.batchIn > s.batchLimit {
			violations++
		}
		for _, n := range s.nodes {
			if n.inflight > n.limit {
				violations++
			}
		}
	}
	defer func() { debugHook = nil }()
	r := run(t, c)
	if violations != 0 {
		t.Fatalf("%d refreshes saw more in flight than the limits", violations)
	}
	if r.MaxQueued == 0 {
		t.Fatal("the burst never queued: the test tests nothing")
	}
	if r.Lost != 0 || r.Completed != r.Arrived || r.Leftover != 0 {
		t.Fatalf("lost %d, completed %d of %d, leftover %d", r.Lost, r.Completed, r.Arrived, r.Leftover)
	}
	if i, b := Seconds(&r.BurstTTFT, 0.5), Seconds(&r.BurstBatch, 0.5); !(b > i) {
		t.Fatalf("burst TTFT p50: batch %v, interactive %v: batch did not absorb the wait", b, i)
	}
}

// Affinity pays: the default's prefix hit rate and TTFT p50 beat the
// same pick without it.
func TestDefaultBeatsLoadOnly(t *testing.T) {
	d, l := run(t, smallConfig("default")), run(t, smallConfig("load-only"))
	if !(d.HitRate() > l.HitRate()) || !(Seconds(&d.TTFT, 0.5) < Seconds(&l.TTFT, 0.5)) {
		t.Fatalf("default hit %.3f TTFT p50 %.3f; load-only hit %.3f p50 %.3f", d.HitRate(), Seconds(&d.TTFT, 0.5), l.HitRate(), Seconds(&l.TTFT, 0.5))
	}
}

func TestLRUAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := newLRU(64)
	var order []uint64 // evictable keys, oldest first
	refs := map[uint64]int{}
	present := map[uint64]bool{}
	var evicted []uint64
	l.onEvict = func(k uint64) { evicted = append(evicted, k) }
	remove := func(k uint64) {
		for i, o := range order {
			if o == k {
				order = append(order[:i], order[i+1:]...)
				return
			}
		}
	}
	for step := 0; step < 20000; step++ {
		k := uint64(rng.IntN(200)) + 1
		switch s := l.find(k); {
		case s >= 0 && refs[k] > 0 && rng.IntN(2) == 0:
			l.unpin(s)
			refs[k]--
			if refs[k] == 0 {
				order = append(order, k)
			}
		case s >= 0:
			l.pin(s)
			if refs[k] == 0 {
				remove(k)
			}
			refs[k]++
		default:
			evicted = evicted[:0]
			s := l.insert(k, false)
			if s < 0 {
				if len(order) != 0 {
					t.Fatalf("step %d: insert failed with %d evictable", step, len(order))
				}
				continue
			}
			if len(present) == 64 {
				if len(evicted) != 1 || evicted[0] != order[0] {
					t.Fatalf("step %d: evicted %v, want the oldest %d", step, evicted, order[0])
				}
				delete(present, order[0])
				order = order[1:]
			}
			present[k] = true
			order = append(order, k)
		}
		if l.used != len(present) || l.pinned != len(present)-len(order) {
			t.Fatalf("step %d: used %d pinned %d, want %d and %d", step, l.used, l.pinned, len(present), len(present)-len(order))
		}
	}
	for k := range present {
		if l.find(k) < 0 {
			t.Fatalf("key %d lost from the table", k)
		}
	}
}

// The GIE index counts, per server, the blocks it holds over the blocks in
// order until one no server holds (matchLongestPrefix), and forgets a
// server's blocks when its LRU evicts them.
func TestGIEIndex(t *testing.T) {
	x := newGIEIndex([]int{8, 8, 4})
	x.add([]uint64{1, 2, 3, 4}, 0)
	x.add([]uint64{1, 2}, 1)
	x.add([]uint64{1, 9, 3}, 2)
	counts := make([]int, 3)
	x.match([]uint64{1, 2, 3, 4, 5, 6}, counts)
	if counts[0] != 4 || counts[1] != 2 || counts[2] != 2 {
		t.Fatalf("counts %v, want [4 2 2] (server 2 holds 1 and 3, not 2)", counts)
	}
	x.match([]uint64{7, 1}, counts)
	if counts[0]+counts[1]+counts[2] != 0 {
		t.Fatalf("counts %v after a first block nobody holds, want zeros", counts)
	}
	// Server 2 holds 4 blocks: 10, 11 and 12 evict 1 and 9.
	x.add([]uint64{10, 11, 12}, 2)
	x.match([]uint64{1, 2, 3}, counts)
	if counts[2] != 1 {
		t.Fatalf("server 2 count %d after evicting block 1, want 1 (block 3)", counts[2])
	}
	if k, ok := x.sets[9]; ok {
		t.Fatalf("block 9 still indexed (%d servers) after its only holder evicted it", popcount(x.bits[k]))
	}
	// 300 blocks held by every server count to 256+ without overflow.
	y := newGIEIndex([]int{512, 512})
	var hs []uint64
	for i := uint64(1); i <= 300; i++ {
		hs = append(hs, i)
	}
	y.add(hs, 0)
	y.add(hs, 1)
	c2 := make([]int, 2)
	y.match(hs, c2)
	if c2[0] != 300 || c2[1] != 300 {
		t.Fatalf("counts %v, want 300 each", c2)
	}
}

// A conversation's next turn holds its previous turn's points; another
// conversation of the same family shares only the system prompt's.
func TestRequestPoints(t *testing.T) {
	w := DefaultWorkload()
	rng := rand.New(rand.NewPCG(3, 4))
	var a *conv
	for a == nil || len(a.turns) < 2 {
		a = newConv(rng, &w, 1)
	}
	b := newConv(rng, &w, 2)
	b.fam, b.st.prefixID, b.st.shared = a.fam, a.st.prefixID, a.st.shared
	r1 := a.request(&w)
	r2 := a.request(&w)
	rb := b.request(&w)
	h1, e1 := r1.points(nil, nil)
	h2, e2 := r2.points(nil, nil)
	hb, eb := rb.points(nil, nil)
	in := func(h uint64, e uint32, hs []uint64, es []uint32) bool {
		for i := range hs {
			if hs[i] == h && es[i] == e {
				return true
			}
		}
		return false
	}
	for i := range h1 {
		if !in(h1[i], e1[i], h2, e2) {
			t.Fatalf("turn 2 lacks turn 1's point at %d", e1[i])
		}
		sys := uint32(w.Families[a.fam].Tokens * 4)
		if shared := in(h1[i], e1[i], hb, eb); shared != (e1[i] <= sys) {
			t.Fatalf("point at %d (system prompt ends at %d): shared with another conversation %v", e1[i], sys, shared)
		}
	}
	if e1[len(e1)-1] != uint32(r1.prompt*4) {
		t.Fatalf("last point at %d, prompt ends at %d", e1[len(e1)-1], r1.prompt*4)
	}
}

// The scorers add up as GIE's and llm-d's profiles do, and the max-score
// picker breaks ties at random.
func TestScorerProfiles(t *testing.T) {
	mk := func(w scorerWeights) (*sim, *scorerPolicy) {
		s := &sim{pol: rand.New(rand.NewPCG(5, 6))}
		for i := 0; i < 3; i++ {
			s.nodes = append(s.nodes, &node{idx: int32(i), kv: newLRU(1024)})
		}
		return s, newScorerPolicy(s, w)
	}
	req := &request{st: stream{prefixID: 77, ownID: 99, shared: 16 * 40}, prompt: 16 * 40}
	gie := scorerWeights{queue: 2, kv: 2, prefix: 3}
	llmd := scorerWeights{prefix: 1, loadAware: 1, threshold: 128}
	cases := []struct {
		name string
		w    scorerWeights
		set  func(s *sim, p *scorerPolicy)
		want int32 // -1: any node, uniformly
	}{
		{"gie: nothing to tell apart", gie, func(*sim, *scorerPolicy) {}, -1},
		{"gie: the prefix wins at equal load", gie, func(s *sim, p *scorerPolicy) {
			p.idx.add(blockIDs(req), 1)
		}, 1},
		{"gie: prefix 3 loses to queue 2 + KV 2 when its node is the most loaded", gie, func(s *sim, p *scorerPolicy) {
			p.idx.add(blockIDs(req), 1)
			s.nodes[1].snap = snapshot{waiting: 9, kvUsage: 0.8}
			s.nodes[2].snap = snapshot{waiting: 1, kvUsage: 0.3}
		}, 0},
		{"llm-d: the prefix beats load-aware's 0.5 even past the threshold", llmd, func(s *sim, p *scorerPolicy) {
			p.idx.add(blockIDs(req), 1)
			s.nodes[1].snap = snapshot{waiting: 500}
		}, 1},
		{"llm-d: load-aware alone prefers the empty queue", llmd, func(s *sim, p *scorerPolicy) {
			s.nodes[0].snap = snapshot{waiting: 3}
			s.nodes[1].snap = snapshot{waiting: 1}
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen := map[int32]int{}
			rng := rand.New(rand.NewPCG(7, 8))
			for i := 0; i < 300; i++ {
				s, p := mk(c.w) // fresh: picks must not feed each other here
				s.pol = rng
				c.set(s, p)
				seen[p.pick(s, req)]++
			}
			if c.want >= 0 && seen[c.want] != 300 {
				t.Fatalf("picks %v, want node %d every time", seen, c.want)
			}
			if c.want < 0 && (len(seen) != 3 || seen[0] < 60 || seen[1] < 60 || seen[2] < 60) {
				t.Fatalf("picks %v, want all three nodes about equally", seen)
			}
		})
	}
}

func blockIDs(r *request) []uint64 {
	var out []uint64
	for b := 0; b < r.prompt/BlockTokens; b++ {
		out = append(out, r.st.blockID(b))
	}
	return out
}

// A queue smaller than the burst's backlog turns the excess away (or
// displaces batch waiters for interactive arrivals), as gateway/flow
// does, and counts them lost; nothing else is lost and every request is
// accounted for.
func TestFullQueueTurnsAway(t *testing.T) {
	c := smallConfig("default")
	c.FlowControl, c.Reserve = true, 0.2
	c.Load = 0.7
	c.Burst = &Burst{At: 40 * time.Second, For: 15 * time.Second, Load: 1.3}
	c.MaxQueued = 16
	r := run(t, c)
	if r.MaxQueued > 16 {
		t.Fatalf("%d queued at once, above max_queued 16", r.MaxQueued)
	}
	if r.Rejected == 0 || r.Lost != r.Rejected || r.Completed+r.Lost != r.Arrived {
		t.Fatalf("arrived %d, completed %d, lost %d, rejected %d: want some rejected, all of the lost", r.Arrived, r.Completed, r.Lost, r.Rejected)
	}
}

// affinity.json has issue 14's fields and each run's seed.
func TestJSONSchema(t *testing.T) {
	m := &Matrix{Runs: []*MatrixRun{{Kind: KindMain, Result: &Result{Fleet: "heterogeneous", Policy: "default", Load: 0.7, Seed: 7}}}}
	b, err := m.JSON("switchyard bench affinity")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Command string
		Runs    []map[string]any
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 1 {
		t.Fatalf("%s", b)
	}
	for _, k := range []string{"fleet", "policy", "load", "ttft_p50_s", "ttft_p99_s", "latency_p99_s", "prefix_hit_rate", "seed"} {
		if _, ok := out.Runs[0][k]; !ok {
			t.Errorf("run without %q: %s", k, b)
		}
	}
	if out.Runs[0]["seed"] != 7.0 {
		t.Errorf("seed %v, want 7", out.Runs[0]["seed"])
	}
}
