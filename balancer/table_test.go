package balancer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// staticNodes returns ready nodes n0, n1, ... with the given capacities.
func staticNodes(caps ...float64) []Node {
	nodes := make([]Node, len(caps))
	for i, c := range caps {
		nodes[i] = Node{ID: fmt.Sprintf("n%d", i), Addr: Address{HTTP: fmt.Sprintf("10.0.0.%d:80", i)}, Capacity: c}
	}
	return nodes
}

func build(t testing.TB, cfg Config, nodes []Node) *Table {
	t.Helper()
	b, err := NewBuilder(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.Build(nodes, t0)
}

func static(blockSize int) Config {
	return Config{Policy: SWRR, Weigher: StaticWeigher{}, BlockSize: blockSize}
}

func pickIDs(t testing.TB, tb *Table, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		e, err := tb.Pick(0)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e.ID()
	}
	return out
}

func TestSWRRExactNginxSequence(t *testing.T) {
	tb := build(t, static(0), staticNodes(5, 1, 1))
	names := map[string]string{"n0": "A", "n1": "B", "n2": "C"}
	var got strings.Builder
	for _, id := range pickIDs(t, tb, 7*50) {
		got.WriteString(names[id])
	}
	// The table starts at a random phase of nginx's period; from that phase
	// on it must repeat A A B A C A A exactly.
	want := strings.Repeat("AABACAA", 52)
	if !strings.Contains(want, got.String()) {
		t.Fatalf("sequence is not nginx's AABACAA repeated: %s", got.String()[:28])
	}
}

func TestSWRRMatchesNginxReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(16)
		caps := make([]float64, n)
		ws := make([]int64, n)
		var total int64
		for i := range caps {
			ws[i] = 1 + rng.Int64N(60)
			caps[i] = float64(ws[i])
			total += ws[i]
		}
		tb := build(t, static(16), staticNodes(caps...))
		ref := newNginxSWRR(ws)
		refSeq := make([]int, total)
		for i := range refSeq {
			refSeq[i] = ref.next()
		}
		// Find the table's phase from its first pick sequence, then
		// compare two whole periods.
		got := pickIDs(t, tb, int(2*total))
		matched := false
		for phase := int64(0); phase < total && !matched; phase++ {
			matched = true
			for k, id := range got {
				if id != fmt.Sprintf("n%d", refSeq[(phase+int64(k))%total]) {
					matched = false
					break
				}
			}
		}
		if !matched && !allEqual(ws) {
			t.Fatalf("trial %d weights %v: blocked SWRR does not follow nginx's sequence", trial, ws)
		}
	}
}

func allEqual(ws []int64) bool {
	for _, w := range ws {
		if w != ws[0] {
			return false
		}
	}
	return true
}

// TestSWRRShares: over 10^6 picks with random weight sets, each node's
// share is within 0.5 % (relative) of weight/total, for tables of one block
// and of many blocks.
func TestSWRRShares(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const picks = 1_000_000
	for trial := 0; trial < 8; trial++ {
		n := []int{3, 7, 16, 40, 100, 257, 500, 1000}[trial]
		caps := make([]float64, n)
		var total float64
		for i := range caps {
			caps[i] = float64(1 + rng.IntN(100))
			if trial%2 == 1 {
				caps[i] = 0.5 + rng.Float64()*20 // non-integral weights
			}
			total += caps[i]
		}
		tb := build(t, static(0), staticNodes(caps...))
		counts := make(map[string]int, n)
		for i := 0; i < picks; i++ {
			e, err := tb.Pick(0)
			if err != nil {
				t.Fatal(err)
			}
			counts[e.ID()]++
		}
		for i, c := range caps {
			want := c / total
			got := float64(counts[fmt.Sprintf("n%d", i)]) / picks
			// 0.5 % of the expected share, and never tighter than the
			// counting resolution of one pick in a full cycle per node.
			tol := max(0.005*want, 1.5/picks+quantErr(caps, i, total))
			if math.Abs(got-want) > tol {
				t.Errorf("n=%d node %d weight %.2f: share %.5f, want %.5f ± %.5f", n, i, c, got, want, tol)
			}
		}
	}
}

// quantErr bounds the share error the block quantisation may add to node i
// for non-integral weights: one slot of its block's period (rounding is at
// random, up or down).
func quantErr(caps []float64, i int, total float64) float64 {
	integral := true
	for _, c := range caps {
		if c != math.Trunc(c) {
			integral = false
		}
	}
	if integral {
		return 0
	}
	const size = 8 // the default block size
	blk := i / size
	var sum float64
	for _, c := range caps[blk*size : min(blk*size+size, len(caps))] {
		sum += c
	}
	// Each block's period holds at least blockQuantum slots per node; the
	// node's own rounding and its neighbours' (which move the period) each
	// cost at most one slot.
	slot := sum / (blockQuantum * float64(min(size, len(caps)-blk*size)))
	return 2 * slot / total
}

// TestSWRRSmoothness: in any window of W consecutive picks no node is
// picked more than ceil(W·w/Σw)+1 times, for single-block tables (nginx's
// own sequence) with random integer weights.
func TestSWRRSmoothness(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 100; trial++ {
		n := 2 + rng.IntN(7)
		if trial%2 == 1 {
			n = 2 + rng.IntN(15)
		}
		caps := make([]float64, n)
		var total float64
		for i := range caps {
			caps[i] = float64(1 + rng.IntN(30))
			total += caps[i]
		}
		tb := build(t, static([]int{8, 16}[trial%2]), staticNodes(caps...))
		seq := pickIDs(t, tb, int(3*total))
		idx := make([]int, len(seq))
		for k, id := range seq {
			fmt.Sscanf(id, "n%d", &idx[k])
		}
		checkSmooth(t, idx, caps, total)
	}
}

func checkSmooth(t *testing.T, idx []int, caps []float64, total float64) {
	t.Helper()
	n := len(caps)
	for w := 1; w <= len(idx)/2; w++ {
		counts := make([]int, n)
		for k := 0; k < len(idx); k++ {
			counts[idx[k]]++
			if k >= w {
				counts[idx[k-w]]--
			}
			if k < w-1 {
				continue
			}
			for i, c := range counts {
				if limit := int(math.Ceil(float64(w)*caps[i]/total)) + 1; c > limit {
					t.Fatalf("weights %v: node %d picked %d times in a window of %d (limit %d)", caps, i, c, w, limit)
				}
			}
		}
	}
}

func TestEligibility(t *testing.T) {
	policies := []Policy{SWRR, RoundRobin, P2C, ConsistentHash, Random}
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			nodes := staticNodes(5, 3, 2, 1, 4, 6)
			nodes[1].State = Draining
			nodes[2].State = Offline
			tb := build(t, Config{Policy: p, Weigher: StaticWeigher{}, BlockSize: 2}, nodes)
			tb.Endpoint(indexOf(tb, "n3")).Exclude(ExcludeBreaker)
			for i := 0; i < 10000; i++ {
				e, err := tb.Pick(uint64(i) * 0x9E3779B97F4A7C15)
				if err != nil {
					t.Fatal(err)
				}
				switch e.ID() {
				case "n1", "n2", "n3":
					t.Fatalf("picked ineligible %s", e.ID())
				}
			}
			// Exclude the rest: the typed error, at once, without a rebuild.
			for _, id := range []string{"n0", "n4", "n5"} {
				tb.Endpoint(indexOf(tb, id)).Exclude(ExcludeAdmin)
			}
			_, err := tb.Pick(1)
			var nee *NoEndpointError
			if !errors.As(err, &nee) || !errors.Is(err, ErrNoEndpoint) {
				t.Fatalf("all excluded: got %v, want *NoEndpointError matching ErrNoEndpoint", err)
			}
			if nee.Nodes != 6 || nee.Ready != 4 {
				t.Fatalf("error counts: %+v", nee)
			}
			// Include one again: it is picked at once.
			tb.Endpoint(indexOf(tb, "n4")).Include(ExcludeAdmin)
			if e, err := tb.Pick(1); err != nil || e.ID() != "n4" {
				t.Fatalf("after include: %v %v", e, err)
			}
		})
	}
}

func TestPickAvoiding(t *testing.T) {
	tb := build(t, static(0), staticNodes(5, 1))
	first := tb.Endpoint(0)
	for i := 0; i < 100; i++ {
		e, err := tb.PickAvoiding(0, []*Endpoint{first})
		if err != nil || e == first {
			t.Fatalf("retry picked the avoided node or failed: %v", err)
		}
	}
	if _, err := tb.PickAvoiding(0, []*Endpoint{tb.Endpoint(0), tb.Endpoint(1)}); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("avoiding every node: %v", err)
	}
}

func TestEmptyTable(t *testing.T) {
	for _, nodes := range [][]Node{nil, {{ID: "a", State: Offline}}} {
		tb := build(t, Config{}, nodes)
		if _, err := tb.Pick(0); !errors.Is(err, ErrNoEndpoint) {
			t.Fatalf("empty table: %v", err)
		}
	}
}

func indexOf(tb *Table, id string) int {
	for i := 0; i < tb.Len(); i++ {
		if tb.Node(i).ID == id {
			return i
		}
	}
	return -1
}

func TestEndpointsOutliveTables(t *testing.T) {
	var gone []string
	reg := NewRegistry(func(id string, addr Address) any { return "pool:" + addr.HTTP }, func(e *Endpoint) { gone = append(gone, e.ID()) })
	b, err := NewBuilder(static(0), reg)
	if err != nil {
		t.Fatal(err)
	}
	t1 := b.Build(staticNodes(1, 2, 3), t0)
	e := t1.Endpoint(indexOf(t1, "n1"))
	e.Acquire()
	e.Exclude(ExcludeBreaker)
	if e.Value() != "pool:10.0.0.1:80" {
		t.Fatalf("value: %v", e.Value())
	}
	nodes := staticNodes(1, 2)
	nodes = append(nodes, Node{ID: "n0", Addr: Address{HTTP: "dup:1"}}) // duplicate id: ignored
	t2 := b.Build(nodes, t0.Add(time.Second))
	if t2.Len() != 2 {
		t.Fatalf("duplicate id was not ignored: %d nodes", t2.Len())
	}
	e2 := t2.Endpoint(indexOf(t2, "n1"))
	if e2 != e || e2.InFlight() != 1 || e2.Exclusions() != ExcludeBreaker {
		t.Fatalf("endpoint state did not survive the rebuild")
	}
	if reg.InFlight() != 1 {
		t.Fatalf("registry in-flight %d", reg.InFlight())
	}
	e.Release()
	if len(gone) != 1 || gone[0] != "n2" {
		t.Fatalf("gone: %v", gone)
	}
	// An address change replaces the endpoint.
	moved := staticNodes(1, 2)
	moved[0].Addr = Address{HTTP: "10.9.9.9:80"}
	t3 := b.Build(moved, t0.Add(2*time.Second))
	if t3.Endpoint(indexOf(t3, "n0")).Addr().HTTP != "10.9.9.9:80" || len(gone) != 2 {
		t.Fatalf("address change: gone %v", gone)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Policy: 99},
		{BlockSize: 300},
		{BlockSize: -1},
		{LoadFactor: 0.5},
		{VirtualNodes: -2},
		{QueueHalfLife: 2 * time.Minute},
		{KVPressure: 1},
		{KVPressure: math.NaN()},
	}
	for _, c := range bad {
		if _, err := NewBuilder(c, nil); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	for _, c := range []Config{{QueueHalfLife: -1, KVPressure: -1}, {QueueHalfLife: time.Minute, KVPressure: 0.5}} {
		if _, err := NewBuilder(c, nil); err != nil {
			t.Errorf("config %+v refused: %v", c, err)
		}
	}
	for _, name := range []string{"dynamic-swrr", "seed-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"} {
		if _, err := NamedConfig(name); err != nil {
			t.Error(err)
		}
	}
	if _, err := NamedConfig("nope"); err == nil {
		t.Error("unknown policy name accepted")
	}
	for p := Policy(0); p < policyCount; p++ {
		if q, err := ParsePolicy(p.String()); err != nil || q != p {
			t.Errorf("ParsePolicy(%s) = %v, %v", p, q, err)
		}
	}
}

// TestBlockedSharesWithExclusion: with one node excluded, the others keep
// picking in proportion to their weights within a few percent.
func TestP2CPrefersIdle(t *testing.T) {
	tb := build(t, Config{Policy: P2C, Weigher: StaticWeigher{}}, staticNodes(1, 1, 1, 1))
	busy := tb.Endpoint(0)
	for i := 0; i < 50; i++ {
		busy.Acquire()
	}
	defer func() {
		for i := 0; i < 50; i++ {
			busy.Release()
		}
	}()
	hits := 0
	for i := 0; i < 10000; i++ {
		if e, _ := tb.Pick(0); e == busy {
			hits++
		}
	}
	if hits != 0 {
		t.Fatalf("P2C sent %d picks to a node with 50 in flight while others were idle", hits)
	}
}

func TestRingHashIsStickyAndBounded(t *testing.T) {
	tb := build(t, Config{Policy: ConsistentHash, Weigher: StaticWeigher{}}, staticNodes(1, 1, 1, 1, 1, 1, 1, 1))
	// Sticky: the same key goes to the same node while loads are low.
	for k := uint64(1); k < 100; k++ {
		a, _ := tb.Pick(k * 7919)
		b, _ := tb.Pick(k * 7919)
		if a != b {
			t.Fatalf("key %d moved between picks", k)
		}
	}
	// Bounded: one hot key with requests held in flight spreads once its
	// node holds more than LoadFactor × its share.
	var held []*Endpoint
	for i := 0; i < 80; i++ {
		e, err := tb.Pick(42)
		if err != nil {
			t.Fatal(err)
		}
		e.Acquire()
		held = append(held, e)
	}
	maxLoad := int64(0)
	for i := 0; i < tb.Len(); i++ {
		maxLoad = max(maxLoad, tb.Endpoint(i).InFlight())
	}
	for _, e := range held {
		e.Release()
	}
	// 80 in flight over 8 equal nodes: the bound is 1.25 × 80/8 + 1 = 13.5.
	if maxLoad > 14 {
		t.Fatalf("one node holds %d of 80 in-flight requests, over the bound", maxLoad)
	}
}

// TestP2CFollowsWeights: with nothing in flight, weighted P2C gives each
// node a share that grows with its weight, and a heavy node can take far
// more than the 2/N that uniform draws would cap it at.
func TestP2CFollowsWeights(t *testing.T) {
	tb := build(t, Config{Policy: P2C, Weigher: StaticWeigher{}}, staticNodes(16, 1, 1, 1, 1, 1, 1, 1, 1, 1))
	counts := map[string]int{}
	const picks = 200000
	for i := 0; i < picks; i++ {
		e, err := tb.Pick(0)
		if err != nil {
			t.Fatal(err)
		}
		counts[e.ID()]++
	}
	if share := float64(counts["n0"]) / picks; share < 0.5 {
		t.Fatalf("the node with 16/25 of the weight got %.2f of the picks", share)
	}
	for i := 1; i < 10; i++ {
		if counts[fmt.Sprintf("n%d", i)] == 0 {
			t.Fatalf("light node n%d never picked", i)
		}
	}
}

// TestSWRRLoadBound: a node holding far more than its share of the
// route's in-flight requests is passed over until it drains; with the
// bound off (static-swrr) it keeps its turn.
func TestSWRRLoadBound(t *testing.T) {
	for _, bounded := range []bool{true, false} {
		cfg := Config{Policy: SWRR, Weigher: StaticWeigher{}, Choices: 1}
		if !bounded {
			cfg.LoadBound = -1
		}
		tb := build(t, cfg, staticNodes(1, 1, 1, 1))
		hot := tb.Endpoint(0)
		for i := 0; i < 20; i++ {
			hot.Acquire()
		}
		hits := 0
		for i := 0; i < 1000; i++ {
			if e, _ := tb.Pick(0); e == hot {
				hits++
			}
		}
		for i := 0; i < 20; i++ {
			hot.Release()
		}
		switch {
		case bounded && hits != 0:
			t.Errorf("bounded: the node with 20 of 20 in flight was picked %d times", hits)
		case !bounded && hits != 250:
			t.Errorf("unbounded: the node was picked %d times, want its 250 turns", hits)
		}
	}
	if _, err := NewBuilder(Config{LoadBound: 0.5}, nil); err == nil {
		t.Error("a load bound below 1 was accepted")
	}
}

// TestTwoChoices: the default weighs a second candidate. A node holding
// 20 requests is picked only when both candidates are that node (1/4 ×
// 1/4 of picks here, against its 1/4 turn with one choice), a node with
// fewer in flight per unit of weight wins over a heavier one with more,
// and with nothing in flight the picks are nginx's sequence.
func TestTwoChoices(t *testing.T) {
	tb := build(t, Config{Weigher: StaticWeigher{}}, staticNodes(1, 1, 1, 1))
	hot := tb.Endpoint(0)
	for i := 0; i < 20; i++ {
		hot.Acquire()
	}
	hits := 0
	const picks = 4000
	for i := 0; i < picks; i++ {
		if e, _ := tb.Pick(0); e == hot {
			hits++
		}
	}
	for i := 0; i < 20; i++ {
		hot.Release()
	}
	// Expected picks/16 = 250 (sd about 15); one choice would give 1000.
	if hits < 150 || hits > 350 {
		t.Errorf("the node with 20 in flight was picked %d times in %d, want about %d", hits, picks, picks/16)
	}

	// Weights 3 and 1: the heavy node with 4 in flight (4/3 per unit)
	// loses to the light one with 1 (1/1) only when that is fewer per
	// unit of weight; with 2 in flight on the light one it wins again.
	tb = build(t, Config{Weigher: StaticWeigher{}}, staticNodes(3, 1))
	heavy, light := tb.Endpoint(indexOf(tb, "n0")), tb.Endpoint(indexOf(tb, "n1"))
	for i := 0; i < 4; i++ {
		heavy.Acquire()
	}
	light.Acquire()
	count := func() (nh, nl int) {
		for i := 0; i < 400; i++ {
			e, _ := tb.Pick(0)
			if e == heavy {
				nh++
			} else {
				nl++
			}
		}
		return nh, nl
	}
	if nh, nl := count(); nl <= 100 {
		t.Errorf("4 in flight on weight 3 vs 1 on weight 1: light node got %d of 400 (heavy %d), want more than its 100 turns", nl, nh)
	}
	light.Acquire()
	if nh, nl := count(); nh <= 300 {
		t.Errorf("4 in flight on weight 3 vs 2 on weight 1: heavy node got %d of 400 (light %d), want more than its 300 turns", nh, nl)
	}
}

// TestSlotQuarantine: the live state of a node that left is not handed to
// a new node until it has rested a minute with nothing in flight, so a
// late breaker callback on the old endpoint cannot exclude the new one.
func TestSlotQuarantine(t *testing.T) {
	b, _ := NewBuilder(Config{}, nil)
	t1 := b.Build(staticNodes(1, 1), t0)
	gone := t1.Endpoint(indexOf(t1, "n1"))
	gone.Acquire()
	b.Build(staticNodes(1), t0.Add(time.Second)) // n1 leaves
	gone.Exclude(ExcludeBreaker)                 // a late callback
	nodes := []Node{{ID: "n0", Addr: Address{HTTP: "10.0.0.0:80"}, Capacity: 1}, {ID: "fresh", Addr: Address{HTTP: "f:1"}, Capacity: 1}}
	t3 := b.Build(nodes, t0.Add(2*time.Second))
	if x := t3.Endpoint(indexOf(t3, "fresh")).Exclusions(); x != 0 {
		t.Fatalf("a new node inherited exclusions %v from one that left", x)
	}
	// Still in flight after the quarantine: not reused either.
	nodes = append(nodes, Node{ID: "later", Addr: Address{HTTP: "l:1"}, Capacity: 1})
	t4 := b.Build(nodes, t0.Add(2*time.Minute))
	if x := t4.Endpoint(indexOf(t4, "later")).Exclusions(); x != 0 || t4.Endpoint(indexOf(t4, "later")).InFlight() != 0 {
		t.Fatalf("a slot with a request in flight was reused")
	}
	gone.Release()
	nodes = append(nodes, Node{ID: "last", Addr: Address{HTTP: "z:1"}, Capacity: 1})
	t5 := b.Build(nodes, t0.Add(3*time.Minute))
	e := t5.Endpoint(indexOf(t5, "last"))
	if e.live != gone.live || e.Exclusions() != 0 || e.InFlight() != 0 {
		t.Fatalf("after its quarantine the slot should be reused, cleared")
	}
}
