package balancer

import (
	"math"
	"strings"
	"testing"
	"time"
)

// unknownLoad is a fresh sample in which the engine reported nothing but
// utilisation.
func unknownLoad(u float64, at time.Time) Load {
	nan := math.NaN()
	return Load{Utilisation: u, Concurrency: nan, Running: nan, Waiting: nan, KVCache: nan, SampledAt: at}
}

// TestUnknownSignalsKeepNginxSequence: with the engine signals unknown
// (NaN), or known and zero, and nothing in flight, the default picks
// nginx's sequence exactly, as before the signals existed.
func TestUnknownSignalsKeepNginxSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		load Load
	}{
		{"unknown", unknownLoad(0.5, t0)},
		{"known zero", Load{Utilisation: 0.5, Concurrency: 2, Running: 2, Waiting: 0, KVCache: 0.3, SampledAt: t0}},
		{"stale queue", Load{Utilisation: 0.5, Concurrency: 2, Running: 2, Waiting: 40, KVCache: 0.99, SampledAt: t0.Add(-time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := staticNodes(5, 1, 1)
			for i := range nodes {
				nodes[i].Load = tc.load
			}
			tb := build(t, Config{Weigher: StaticWeigher{}}, nodes)
			for i := 0; i < tb.Len(); i++ {
				if q := tb.Queue(i); q != 0 {
					t.Fatalf("node %d counts a queue of %v", i, q)
				}
			}
			names := map[string]string{"n0": "A", "n1": "B", "n2": "C"}
			var got strings.Builder
			for _, id := range pickIDs(t, tb, 7*50) {
				got.WriteString(names[id])
			}
			if !strings.Contains(strings.Repeat("AABACAA", 52), got.String()) {
				t.Fatalf("picks %s are not nginx's sequence", got.String()[:35])
			}
		})
	}
}

// TestQueueAgeing: the queue a table counts for a node is its reported
// waiting requests halved every QueueHalfLife of the sample's age, and
// nothing for an unknown, stale, negative or ignored queue, or for a node
// that is not Ready.
func TestQueueAgeing(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name     string
		halfLife time.Duration
		waiting  float64
		age      time.Duration
		state    State
		want     float64
	}{
		{"fresh", 0, 8, 0, Ready, 8},
		{"one half-life", 0, 8, 2 * time.Second, Ready, 4},
		{"two half-lives", 0, 8, 4 * time.Second, Ready, 2},
		{"custom half-life", time.Second, 8, 3 * time.Second, Ready, 1},
		{"a second ahead counts whole", 0, 8, -time.Second, Ready, 8},
		{"stale", 0, 8, 10 * time.Second, Ready, 0},
		{"far ahead", 0, 8, -11 * time.Second, Ready, 0},
		{"unknown", 0, nan, 0, Ready, 0},
		{"negative", 0, -3, 0, Ready, 0},
		{"infinite is bounded", 0, math.Inf(1), 0, Ready, maxQueue},
		{"ignored", -1, 8, 0, Ready, 0},
		{"not ready", 0, 8, 0, NotReady, 0},
		{"asleep", 0, 8, 0, Asleep, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := staticNodes(1, 1)
			nodes[0].State = tc.state
			nodes[0].Load = Load{Utilisation: 0.5, Waiting: tc.waiting, KVCache: nan, SampledAt: t0.Add(-tc.age)}
			tb := build(t, Config{Weigher: StaticWeigher{}, QueueHalfLife: tc.halfLife}, nodes)
			i := indexOf(tb, "n0")
			if got := tb.Queue(i); math.Abs(got-tc.want) > 1e-6*tc.want {
				t.Fatalf("queue %v, want %v", got, tc.want)
			}
			if w := tb.Node(i).Load.Waiting; !(w == tc.waiting || math.IsNaN(w) && math.IsNaN(tc.waiting)) {
				t.Fatalf("Node(i).Load.Waiting = %v, want %v as given", w, tc.waiting)
			}
		})
	}
}

// TestQueueNotCountedTwice: the queue a table counts leaves out the
// waiting requests that must be this gateway's own (its in-flight requests
// beyond the engine's running count), which the pick counts as in flight.
func TestQueueNotCountedTwice(t *testing.T) {
	for _, tc := range []struct {
		name              string
		running, inflight float64
		want              float64
	}{
		{"none of ours", 4, 0, 5},
		{"ours all running", 4, 4, 5},
		{"two of ours waiting", 4, 6, 3},
		{"the whole queue is ours", 4, 9, 0},
		{"more of ours than reported", 4, 12, 0},
		{"running unknown", math.NaN(), 9, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := NewBuilder(Config{Weigher: StaticWeigher{}}, nil)
			nodes := staticNodes(1, 1)
			ep := b.Build(nodes, t0).Endpoint(0)
			for range int(tc.inflight) {
				ep.Acquire()
			}
			nodes[0].Load = unknownLoad(0.5, t0)
			nodes[0].Load.Running, nodes[0].Load.Waiting = tc.running, 5
			tb := b.Build(nodes, t0)
			if got := tb.Queue(indexOf(tb, "n0")); got != tc.want {
				t.Fatalf("queue %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTwoChoicesCountQueue: a node whose engine reports a queue is passed
// over as if the queue were in flight from this gateway: with 20 waiting
// and nothing in flight anywhere it is picked only when both candidates
// are that node (1/16 of picks among four equal nodes, against its 1/4
// turn); ignoring queues it gets its turn; a heavy node's queue counts per
// unit of its weight.
func TestTwoChoicesCountQueue(t *testing.T) {
	const picks = 4000
	share := func(cfg Config, waiting float64) float64 {
		nodes := staticNodes(1, 1, 1, 1)
		for i := range nodes {
			nodes[i].Load = unknownLoad(0.5, t0)
		}
		nodes[0].Load.Waiting = waiting
		tb := build(t, cfg, nodes)
		hits := 0
		for _, id := range pickIDs(t, tb, picks) {
			if id == "n0" {
				hits++
			}
		}
		return float64(hits) / picks
	}
	// Expected 1/16 = 0.0625 (sd about 0.004); 1/4 with one choice.
	if s := share(Config{Weigher: StaticWeigher{}}, 20); s < 0.04 || s > 0.09 {
		t.Errorf("node with 20 waiting got %.3f of picks, want about 1/16", s)
	}
	if s := share(Config{Weigher: StaticWeigher{}, QueueHalfLife: -1}, 20); s != 0.25 {
		t.Errorf("queues ignored: node with 20 waiting got %.3f of picks, want its 1/4 turn exactly", s)
	}
	if s := share(Config{Weigher: StaticWeigher{}}, math.NaN()); s != 0.25 {
		t.Errorf("queue unknown: node got %.3f of picks, want its 1/4 turn exactly", s)
	}

	// Weights 3 and 1, nothing in flight: the heavy node with 2 waiting
	// (2/3 per unit of weight) still beats the light one with 1 waiting
	// (1 per unit); with 4 waiting (4/3) it loses to it.
	duel := func(heavyQ, lightQ float64) (nh int) {
		nodes := staticNodes(3, 1)
		nodes[0].Load, nodes[1].Load = unknownLoad(0.5, t0), unknownLoad(0.5, t0)
		nodes[0].Load.Waiting, nodes[1].Load.Waiting = heavyQ, lightQ
		tb := build(t, Config{Weigher: StaticWeigher{}}, nodes)
		for _, id := range pickIDs(t, tb, 400) {
			if id == "n0" {
				nh++
			}
		}
		return nh
	}
	if nh := duel(2, 1); nh <= 300 {
		t.Errorf("heavy node with 2/3 queued per unit vs light with 1: heavy got %d of 400, want more than its 300 turns", nh)
	}
	if nh := duel(4, 1); nh >= 300 {
		t.Errorf("heavy node with 4/3 queued per unit vs light with 1: heavy got %d of 400, want fewer than its 300 turns", nh)
	}
}

// TestKVPressure: KV-cache usage above the threshold lowers a node's
// weight linearly to KVFloor at a full cache; unknown, stale or disabled
// usage leaves it alone; and the lowering does not hold the weight down
// once the pressure is gone (the weigher's step cap runs from its own
// output, not from the lowered weight).
func TestKVPressure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		kv     float64
		age    time.Duration
		factor float64
	}{
		{"below", Config{}, 0.5, 0, 1},
		{"at threshold", Config{}, 0.9, 0, 1},
		{"halfway", Config{}, 0.95, 0, 0.5},
		{"full", Config{}, 1, 0, KVFloor},
		{"over full", Config{}, 1.7, 0, KVFloor},
		{"nearly full is floored", Config{}, 0.995, 0, KVFloor},
		{"custom threshold", Config{KVPressure: 0.5}, 0.75, 0, 0.5},
		{"unknown", Config{}, math.NaN(), 0, 1},
		{"stale", Config{}, 1, 11 * time.Second, 1},
		{"off", Config{KVPressure: -1}, 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := staticNodes(2, 2)
			nodes[0].Load = unknownLoad(0.5, t0.Add(-tc.age))
			nodes[0].Load.KVCache = tc.kv
			tc.cfg.Weigher = StaticWeigher{}
			tb := build(t, tc.cfg, nodes)
			i := indexOf(tb, "n0")
			if got, want := tb.Weight(i), 2*tc.factor; math.Abs(got-want) > 1e-9 {
				t.Fatalf("weight %v, want %v", got, want)
			}
			if got := float64(tb.live[i].s.loadWeight()); math.Abs(got-2*tc.factor) > 1e-6 {
				t.Fatalf("the picks' weight %v, want %v", got, 2*tc.factor)
			}
		})
	}

	// Through ThroughputWeigher, whose step cap would take several
	// rebuilds to climb back from KVFloor if it started from the lowered
	// weight.
	b, _ := NewBuilder(Config{}, nil)
	nodes := staticNodes(4, 4)
	for i := range nodes {
		nodes[i].Load = unknownLoad(0.5, t0)
	}
	nodes[0].Load.KVCache = 1
	tb := b.Build(nodes, t0)
	if w := tb.Weight(indexOf(tb, "n0")); w != 4*KVFloor {
		t.Fatalf("full cache: weight %v, want %v", w, 4*KVFloor)
	}
	nodes[0].Load = unknownLoad(0.5, t0.Add(3*time.Second))
	nodes[1].Load.SampledAt = t0.Add(3 * time.Second)
	tb = b.Build(nodes, t0.Add(3*time.Second))
	if w := tb.Weight(indexOf(tb, "n0")); w != 4 {
		t.Fatalf("cache freed: weight %v, want its full 4 at once", w)
	}
}

// TestReadiness: nodes whose engine is not ready or asleep are not picked
// but stay in the table with their endpoint (in-flight count and all). One
// back within readyMemory returns at full weight; one away longer, or one
// never Ready since the first table that turns Ready minutes later,
// slow-starts.
func TestReadiness(t *testing.T) {
	b, _ := NewBuilder(Config{Weigher: ThroughputWeigher{}}, nil)
	nodes := staticNodes(1, 1, 1, 1)
	nodes[3].State = NotReady // loading when the gateway started
	tb := b.Build(nodes, t0)
	ep := tb.Endpoint(indexOf(tb, "n1"))
	ep.Acquire()
	defer ep.Release()

	at := t0
	step := func(d time.Duration, states ...State) *Table {
		at = at.Add(d)
		for i, s := range states {
			nodes[i].State = s
		}
		return b.Build(nodes, at)
	}
	tb = step(3*time.Second, Ready, NotReady, Asleep, NotReady)
	if tb.Len() != 4 || tb.Ready() != 1 {
		t.Fatalf("len %d ready %d, want 4 nodes kept, 1 ready", tb.Len(), tb.Ready())
	}
	if tb.Endpoint(indexOf(tb, "n1")) != ep || ep.InFlight() != 1 {
		t.Fatalf("a node that is not ready lost its endpoint or its in-flight count")
	}
	for _, id := range pickIDs(t, tb, 100) {
		if id != "n0" {
			t.Fatalf("picked %s, which is not ready or asleep", id)
		}
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if st := tb.Node(indexOf(tb, id)).State; st != NotReady && st != Asleep {
			t.Fatalf("%s state %v", id, st)
		}
	}

	// n1 is back after 30 s: full weight at once. n2 sleeps on.
	tb = step(30*time.Second, Ready, Ready, Asleep, NotReady)
	if w := tb.Weight(indexOf(tb, "n1")); w != 1 {
		t.Fatalf("back within a minute: weight %v, want 1", w)
	}
	// n2 wakes after 90 s asleep, n3 turns ready 93 s after the gateway
	// first saw it: both slow-start (10 % of their weight at first).
	tb = step(60*time.Second, Ready, Ready, Ready, Ready)
	for _, id := range []string{"n2", "n3"} {
		if w := tb.Weight(indexOf(tb, id)); math.Abs(w-0.1) > 1e-9 {
			t.Fatalf("%s back after more than a minute: weight %v, want 0.1 (slow start)", id, w)
		}
		if since := tb.Node(indexOf(tb, id)).Since; !since.Equal(at) {
			t.Fatalf("%s: Since %v, want %v", id, since, at)
		}
	}
	if w := tb.Weight(indexOf(tb, "n1")); w != 1 {
		t.Fatalf("n1 weight %v, want 1", w)
	}
	// A node not Ready for a moment in the first table and Ready soon
	// after: no slow start.
	b2, _ := NewBuilder(Config{}, nil)
	nodes2 := staticNodes(1, 1)
	nodes2[1].State = Asleep
	b2.Build(nodes2, t0)
	nodes2[1].State = Ready
	if w := b2.Build(nodes2, t0.Add(10*time.Second)).Weight(1); w != 1 {
		t.Fatalf("briefly asleep at the first table: weight %v, want 1", w)
	}
}

func TestStateStrings(t *testing.T) {
	for s, want := range map[State]string{Ready: "ready", Draining: "draining", Offline: "offline", NotReady: "not-ready", Asleep: "asleep", 9: "state(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}
