package balancer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// affRoute is one route's builder, latest table and affinity, as a
// gateway's table owner holds them.
type affRoute struct {
	b   *Builder
	aff *Affinity
	t   *Table
	now time.Time
	rep map[string]NodeReport
}

func newAffRoute(tb testing.TB, cfg AffinityConfig, caps ...float64) *affRoute {
	tb.Helper()
	b, err := NewBuilder(Config{Policy: SWRR, Weigher: StaticWeigher{}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	aff, err := NewAffinity(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r := &affRoute{b: b, aff: aff, now: t0, rep: map[string]NodeReport{}}
	r.rebuild(staticNodes(caps...), 0)
	return r
}

// rebuild builds a table of nodes dt after the previous one and updates
// the affinity with it.
func (r *affRoute) rebuild(nodes []Node, dt time.Duration) {
	r.now = r.now.Add(dt)
	r.t = r.b.Build(nodes, r.now)
	r.aff.Update(r.t, r.now, func(id string) (NodeReport, bool) {
		rep, ok := r.rep[id]
		return rep, ok
	})
}

func (r *affRoute) pick(tb testing.TB, req *AffinityRequest) Choice {
	tb.Helper()
	c, err := r.aff.Pick(r.t, req, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// endpoint returns the table's endpoint of node id.
func (r *affRoute) endpoint(id string) *Endpoint {
	for i := 0; i < r.t.Len(); i++ {
		if r.t.Endpoint(i).ID() == id {
			return r.t.Endpoint(i)
		}
	}
	return nil
}

// conversation builds the prefix points of a conversation's turns the way
// gateway/prefix does: the shared system prompt's points, then points of
// the conversation's own text, with a message end at each turn's end.
type conversation struct {
	system, id uint64
	sysLen     uint32
	turns      []uint32 // the ends of the turns so far
}

func (c *conversation) request(turnLen uint32) *AffinityRequest {
	end := c.sysLen
	if len(c.turns) > 0 {
		end = c.turns[len(c.turns)-1]
	}
	end += turnLen
	c.turns = append(c.turns, end)
	r := &AffinityRequest{Size: end}
	for p := uint32(64); p <= end; p *= 2 { // block points, sparser than prefix's
		r.Hashes = append(r.Hashes, c.pointAt(p))
		r.Ends = append(r.Ends, p)
	}
	r.Hashes = append(r.Hashes, c.pointAt(c.sysLen))
	r.Ends = append(r.Ends, c.sysLen)
	for _, e := range c.turns {
		r.Hashes = append(r.Hashes, c.pointAt(e)^0xe4d)
		r.Ends = append(r.Ends, e)
	}
	sortPoints(r)
	return r
}

func (c *conversation) pointAt(p uint32) uint64 {
	if p <= c.sysLen {
		return mix(c.system*1_000_003 + uint64(p))
	}
	return mix(c.id*7_919_993 + uint64(p))
}

func sortPoints(r *AffinityRequest) {
	for i := 1; i < len(r.Ends); i++ {
		for j := i; j > 0 && r.Ends[j] < r.Ends[j-1]; j-- {
			r.Ends[j], r.Ends[j-1] = r.Ends[j-1], r.Ends[j]
			r.Hashes[j], r.Hashes[j-1] = r.Hashes[j-1], r.Hashes[j]
		}
	}
}

// A conversation's next turn goes to the node that served its previous
// turns, while that node is within the load bound.
func TestPrefixFollowsConversation(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1, 1, 1, 1, 1, 1)
	c := &conversation{system: 1, id: 100, sysLen: 4000}
	first := r.pick(t, c.request(300))
	if first.Reason != ByLoad {
		t.Fatalf("first turn: reason %v, want load", first.Reason)
	}
	first.Endpoint.Acquire() // the first turn is in flight
	for turn := 2; turn <= 5; turn++ {
		ch := r.pick(t, c.request(500))
		if ch.Endpoint != first.Endpoint || ch.Reason != ByPrefix {
			t.Fatalf("turn %d: %s by %v, want %s by prefix", turn, ch.Endpoint.ID(), ch.Reason, first.Endpoint.ID())
		}
		if want := c.turns[len(c.turns)-2]; ch.Match != want {
			t.Fatalf("turn %d: match %d, want the previous turn's end %d", turn, ch.Match, want)
		}
	}
}

// A preferred node over the bound is passed over for the table's pick,
// and taken again once its load falls.
func TestPrefixBoundedByLoad(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1, 1)
	c := &conversation{system: 1, id: 7, sysLen: 2000}
	home := r.pick(t, c.request(300)).Endpoint
	// Three requests in flight elsewhere, five on home: home holds 5 of 8
	// (+1) against a bound of ceil(1.25 × 9 / 4) = 3.
	for i := 0; i < 5; i++ {
		home.Acquire()
	}
	for _, id := range []string{"n0", "n1", "n2", "n3"} {
		if e := r.endpoint(id); e != home {
			e.Acquire()
		}
	}
	ch := r.pick(t, c.request(300))
	if ch.Endpoint == home || ch.Reason != ByLoad {
		t.Fatalf("over the bound: %s by %v, want another node by load", ch.Endpoint.ID(), ch.Reason)
	}
	for i := 0; i < 5; i++ {
		home.Release()
	}
	// The conversation's deepest point is now on the other node; an
	// equally deep request goes there, and home still holds the shorter
	// prefix.
	next := r.pick(t, c.request(300))
	if next.Endpoint != ch.Endpoint || next.Reason != ByPrefix {
		t.Fatalf("after the move: %s by %v, want %s by prefix", next.Endpoint.ID(), next.Reason, ch.Endpoint.ID())
	}
}

// A prefix that as many nodes hold as a bucket has ways is cached
// everywhere: once it is, new conversations sharing only it are placed by
// load. Until then the bound spreads them.
func TestPopularPrefixPlacedByLoad(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1, 1, 1, 1, 1, 1)
	byLoad := 0
	for id := uint64(0); id < 80; id++ {
		c := &conversation{system: 9, id: id, sysLen: 3000}
		ch := r.pick(t, c.request(200))
		ch.Endpoint.Acquire() // every conversation stays in flight
		if id >= 40 && ch.Reason == ByLoad {
			byLoad++
		}
	}
	if byLoad != 40 {
		t.Fatalf("%d of the last 40 placed by load, want all (the system prompt is everywhere)", byLoad)
	}
	for i := 0; i < r.t.Ready(); i++ {
		if in := r.t.Endpoint(i).InFlight(); in > 80*5/4/8+1 {
			t.Fatalf("%s holds %d of 80: over the bound", r.t.Endpoint(i).ID(), in)
		}
	}
	// Still, a conversation's own history is followed.
	c := &conversation{system: 9, id: 1000, sysLen: 3000}
	home := r.pick(t, c.request(200)).Endpoint
	if ch := r.pick(t, c.request(200)); ch.Endpoint != home || ch.Reason != ByPrefix {
		t.Fatalf("own history: %s by %v, want %s by prefix", ch.Endpoint.ID(), ch.Reason, home.ID())
	}
}

// A node that got only a short prefix is not preferred.
func TestShortMatchIgnored(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{MinMatch: 1000}, 1, 1, 1, 1)
	c := &conversation{system: 3, id: 3, sysLen: 100}
	r.pick(t, c.request(400)) // ends at 500
	if ch := r.pick(t, c.request(10)); ch.Reason != ByLoad {
		t.Fatalf("match of 500 < MinMatch 1000: reason %v, want load", ch.Reason)
	}
	if ch := r.pick(t, c.request(600)); ch.Reason != ByPrefix || ch.Match != 510 {
		// 510 < 1000 too: still by load.
		if ch.Reason != ByLoad {
			t.Fatalf("reason %v", ch.Reason)
		}
	}
	if ch := r.pick(t, c.request(10)); ch.Reason != ByPrefix || ch.Match < 1000 {
		t.Fatalf("match of %d: reason %v, want prefix", ch.Match, ch.Reason)
	}
}

// Entries older than MaxAge no longer count; Tick moves the clock between
// table builds.
func TestEntriesAge(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{MaxAge: time.Minute}, 1, 1, 1, 1, 1, 1)
	c := &conversation{system: 4, id: 4, sysLen: 2000}
	r.pick(t, c.request(300))
	r.aff.Tick(r.now.Add(50 * time.Second))
	if ch := r.pick(t, c.request(300)); ch.Reason != ByPrefix {
		t.Fatalf("50 s later: reason %v, want prefix", ch.Reason)
	}
	r.aff.Tick(r.now.Add(200 * time.Second))
	if ch := r.pick(t, c.request(300)); ch.Reason != ByLoad {
		t.Fatalf("200 s later: reason %v, want load (entries expired)", ch.Reason)
	}
}

// Excluded and avoided nodes are never preferred.
func TestPreferredNodeExcluded(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1)
	c := &conversation{system: 5, id: 5, sysLen: 2000}
	home := r.pick(t, c.request(300)).Endpoint
	req := c.request(300)
	ch, err := r.aff.Pick(r.t, req, []*Endpoint{home})
	if err != nil || ch.Endpoint == home {
		t.Fatalf("avoided node picked (%v)", err)
	}
	home.Exclude(ExcludeBreaker)
	if ch := r.pick(t, c.request(300)); ch.Endpoint == home {
		t.Fatal("excluded node picked")
	}
	for _, id := range []string{"n0", "n1", "n2"} {
		r.endpoint(id).Exclude(ExcludeAdmin)
	}
	if _, err := r.aff.Pick(r.t, c.request(300), nil); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("all excluded: err %v, want ErrNoEndpoint", err)
	}
}

// Sessions stick to their node within the bound and follow it when it
// moves.
func TestSessionAffinity(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1, 1, 1, 1)
	s := &AffinityRequest{Session: AffinityKey([]byte("alice"))}
	home := r.pick(t, s).Endpoint
	for i := 0; i < 5; i++ {
		if ch := r.pick(t, s); ch.Endpoint != home || ch.Reason != BySession {
			t.Fatalf("pick %d: %s by %v, want %s by session", i, ch.Endpoint.ID(), ch.Reason, home.ID())
		}
	}
	for i := 0; i < 4; i++ {
		home.Acquire()
	}
	moved := r.pick(t, s)
	if moved.Endpoint == home || moved.Reason != ByLoad {
		t.Fatalf("over the bound: %s by %v", moved.Endpoint.ID(), moved.Reason)
	}
	if ch := r.pick(t, s); ch.Endpoint != moved.Endpoint || ch.Reason != BySession {
		t.Fatalf("after the move: %s by %v, want %s", ch.Endpoint.ID(), ch.Reason, moved.Endpoint.ID())
	}
}

// Adapters go to the nodes that report them loaded; over the bound they
// spread to other nodes until MaxAdapterNodes have them, then stay there.
func TestAdapterAffinity(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{MaxAdapterNodes: 2}, 1, 1, 1, 1, 1, 1, 1, 1)
	r.rep["n5"] = NodeReport{Adapters: []string{"sql-lora"}, HitRate: -1}
	r.rebuild(staticNodes(1, 1, 1, 1, 1, 1, 1, 1), 3*time.Second)
	req := &AffinityRequest{Adapter: AffinityKey([]byte("sql-lora"))}
	n5 := r.endpoint("n5")
	if ch := r.pick(t, req); ch.Endpoint != n5 || ch.Reason != ByAdapter {
		t.Fatalf("%s by %v, want n5 by adapter", ch.Endpoint.ID(), ch.Reason)
	}
	// n5 over the bound: one more node may load it.
	for i := 0; i < 3; i++ {
		n5.Acquire()
	}
	second := r.pick(t, req)
	if second.Endpoint == n5 || second.Reason != ByLoad {
		t.Fatalf("n5 full: %s by %v, want a new node by load", second.Endpoint.ID(), second.Reason)
	}
	// Both over the bound and the cap reached: the least loaded of the two.
	for i := 0; i < 4; i++ {
		second.Endpoint.Acquire()
	}
	third := r.pick(t, req)
	if third.Endpoint != n5 || third.Reason != ByAdapter {
		t.Fatalf("at the cap: %s by %v, want n5 by adapter", third.Endpoint.ID(), third.Reason)
	}
}

// An engine that hits far less than the gateway predicts gets a shorter
// horizon; once it hits as predicted, the horizon grows back.
func TestCalibrationShortensHorizon(t *testing.T) {
	cfg := AffinityConfig{MaxAge: 10 * time.Minute, MinAge: 20 * time.Second}
	r := newAffRoute(t, cfg, 1, 1)
	n0 := r.endpoint("n0")
	if got := r.aff.Horizon(n0); got != 10*time.Minute {
		t.Fatalf("initial horizon %v", got)
	}
	var hits, queries float64
	// The engine reports 20 % hits, later all.
	round := func(hitRate float64) {
		h, q := calibrationTraffic(t, r, hitRate)
		hits, queries = hits+h, queries+q
		r.rep["n0"] = NodeReport{PrefixHits: hits, PrefixQueries: queries, PrefixCounts: true, HitRate: -1}
		r.rebuild(staticNodes(1, 1), 3*time.Second)
	}
	round(0.2) // the first report only sets the baseline
	round(0.2)
	short := r.aff.Horizon(n0)
	if short >= 10*time.Minute {
		t.Fatalf("horizon %v after low hits, want shorter than 10m", short)
	}
	for range 20 {
		round(0.2)
	}
	if got := r.aff.Horizon(n0); got != 20*time.Second {
		t.Fatalf("horizon %v after many low-hit rounds, want the 20s floor", got)
	}
	for range 30 {
		round(1)
	}
	if got := r.aff.Horizon(n0); got != 10*time.Minute {
		t.Fatalf("horizon %v after hits as predicted, want back to 10m", got)
	}
}

// calibrationTraffic sends conversations to n0 (n1 avoided) whose second
// turns the gateway predicts mostly cached, and returns the hit and query
// tokens an engine hitting hitRate of their prompts would count.
func calibrationTraffic(tb testing.TB, r *affRoute, hitRate float64) (hits, queries float64) {
	tb.Helper()
	n0, n1 := r.endpoint("n0"), r.endpoint("n1")
	for id := uint64(0); id < 40; id++ {
		c := &conversation{system: 50 + id, id: id, sysLen: 3000}
		req := c.request(1000)
		ch, err := r.aff.Pick(r.t, req, []*Endpoint{n1})
		if err != nil || ch.Endpoint != n0 {
			tb.Fatal("pick did not go to n0")
		}
		req = c.request(400)
		ch, _ = r.aff.Pick(r.t, req, []*Endpoint{n1})
		if ch.Reason != ByPrefix {
			tb.Fatalf("second turn by %v", ch.Reason)
		}
		queries += float64(req.Size) / 4
		hits += hitRate * float64(req.Size) / 4
	}
	return hits, queries
}

// Counters that read a known 0 are the starting point: when all of a
// node's traffic falls between two reports (0, then a big jump), the jump
// is counted and calibrates the horizon. Unknown counters are not a
// starting point (the first known reading is), and a node is calibrated
// from its first listing, ready or not (the regression behind a flaky
// TestPrefixCalibrationLive: 0 was taken for unknown, and the jump became
// the starting point).
func TestCalibrationFromKnownZero(t *testing.T) {
	cfg := AffinityConfig{MaxAge: 10 * time.Minute, MinAge: 20 * time.Second}
	for _, tc := range []struct {
		name  string
		first NodeReport
		ready bool
		want  func(time.Duration) bool
	}{
		{"known zero", NodeReport{PrefixCounts: true, HitRate: -1}, true, func(h time.Duration) bool { return h < 10*time.Minute }},
		{"known zero while not ready", NodeReport{PrefixCounts: true, HitRate: -1}, false, func(h time.Duration) bool { return h < 10*time.Minute }},
		{"unknown", NodeReport{HitRate: -1}, true, func(h time.Duration) bool { return h == 10*time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAffRoute(t, cfg)
			nodes := staticNodes(1, 1)
			if !tc.ready {
				nodes[0].State = NotReady
			}
			r.rep["n0"] = tc.first
			r.rebuild(nodes, 3*time.Second)
			if !tc.ready {
				delete(r.rep, "n0") // ready, with no report this time
			}
			r.rebuild(staticNodes(1, 1), 3*time.Second)
			hits, queries := calibrationTraffic(t, r, 0.1)
			r.rep["n0"] = NodeReport{PrefixHits: hits, PrefixQueries: queries, PrefixCounts: true, HitRate: -1}
			r.rebuild(staticNodes(1, 1), 3*time.Second)
			if got := r.aff.Horizon(r.endpoint("n0")); !tc.want(got) {
				t.Fatalf("horizon %v after 0 then %.0f hits of %.0f queries", got, hits, queries)
			}
		})
	}
}

// The engine's counters lag the gateway's picks: a first reading that
// covers only a few of the requests picked (here 5,000 query tokens, all
// misses) is not judged against the gateway's prediction for all of them;
// the evaluation waits until the engine has counted enough.
func TestCalibrationWaitsForTheEngine(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{MaxAge: 10 * time.Minute, MinAge: 20 * time.Second}, 1, 1)
	n0 := r.endpoint("n0")
	r.rep["n0"] = NodeReport{PrefixCounts: true, HitRate: -1}
	r.rebuild(staticNodes(1, 1), 3*time.Second)
	hits, queries := calibrationTraffic(t, r, 0.1)
	r.rep["n0"] = NodeReport{PrefixQueries: 5000, PrefixCounts: true, HitRate: -1}
	r.rebuild(staticNodes(1, 1), 3*time.Second)
	if got := r.aff.Horizon(n0); got != 10*time.Minute {
		t.Fatalf("horizon %v judged from a lagging reading, want 10m", got)
	}
	r.rep["n0"] = NodeReport{PrefixHits: hits, PrefixQueries: queries, PrefixCounts: true, HitRate: -1}
	r.rebuild(staticNodes(1, 1), 3*time.Second)
	if got := r.aff.Horizon(n0); got >= 10*time.Minute {
		t.Fatalf("horizon %v once the engine counted %.0f hits of %.0f queries, want shorter", got, hits, queries)
	}
}

// A table the affinity has not seen is picked from without affinity, and
// nodes that left are never returned from stale entries.
func TestViewsAndDepartures(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 1, 1, 1)
	c := &conversation{system: 6, id: 6, sysLen: 2000}
	home := r.pick(t, c.request(300)).Endpoint

	// A table built but not yet given to Update.
	unseen := r.b.Build(staticNodes(1, 1, 1, 1), r.now.Add(time.Second))
	ch, err := r.aff.Pick(unseen, c.request(300), nil)
	if err != nil || ch.Reason != ByLoad {
		t.Fatalf("unseen table: reason %v err %v, want load", ch.Reason, err)
	}
	r.aff.Update(unseen, r.now.Add(time.Second), nil)
	r.t = unseen

	// The home node leaves: its entries must not name whoever replaces it.
	var rest []Node
	for _, n := range staticNodes(1, 1, 1, 1) {
		if n.ID != home.ID() {
			rest = append(rest, n)
		}
	}
	r.rebuild(rest, 3*time.Second)
	ch = r.pick(t, c.request(300))
	if ch.Endpoint.ID() == home.ID() || ch.Reason != ByLoad {
		t.Fatalf("after the home node left: %s by %v", ch.Endpoint.ID(), ch.Reason)
	}
	// While it stays away (tables every few seconds), its id is kept until
	// its entries have expired, then freed; a node that returns then gets
	// a fresh endpoint and reuses the freed id.
	for k := 0; k < 3; k++ {
		r.rebuild(rest, 3*time.Second)
	}
	if len(r.aff.free) != 0 {
		t.Fatalf("%d ids freed while entries may still name them", len(r.aff.free))
	}
	for k := 0; k < 5; k++ {
		r.rebuild(rest, 3*time.Minute)
	}
	if len(r.aff.free) != 1 || len(r.aff.nodes) != 3 {
		t.Fatalf("after MaxAge: %d ids free, %d nodes known; want 1 and 3", len(r.aff.free), len(r.aff.nodes))
	}
	r.rebuild(staticNodes(1, 1, 1, 1), 3*time.Second)
	if len(r.aff.free) != 0 || r.aff.next != 4 {
		t.Fatalf("the returning node: %d ids handed out, %d free; want 4 and 0", r.aff.next, len(r.aff.free))
	}
}

func TestAffinityConfigValidate(t *testing.T) {
	for _, c := range []AffinityConfig{
		{Entries: 10}, {Entries: 1 << 29}, {MaxAge: -1}, {MinAge: time.Hour, MaxAge: time.Minute},
		{LoadFactor: 0.5}, {MinMatch: -1}, {MaxAdapterNodes: -2},
	} {
		if _, err := NewAffinity(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if _, err := NewAffinity(AffinityConfig{}); err != nil {
		t.Fatal(err)
	}
}

// Picks race with table rebuilds, with the index's growth (by Update and
// by Tick) and with each other; run under -race.
func TestAffinityConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newAffRoute(t, AffinityConfig{Entries: 1 << 16}, 1, 2, 3, 4, 5, 6, 7, 8)
	var cur sync.Mutex // guards r.t between the owner and the pickers
	table := func() *Table {
		cur.Lock()
		defer cur.Unlock()
		return r.t
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000 && ctx.Err() == nil; i++ {
				c := &conversation{system: uint64(i % 3), id: uint64(w*100000 + i/4), sysLen: 1500}
				req := c.request(uint32(100 + i%400))
				req.Session = uint64(i%17 + 1)
				ch, err := r.aff.Pick(table(), req, nil)
				if err != nil {
					t.Error(err)
					return
				}
				ch.Endpoint.Acquire()
				ch.Endpoint.Complete()
			}
		}()
	}
	picked := make(chan struct{})
	go func() {
		wg.Wait()
		close(picked)
	}()
	ticks := make(chan time.Time)
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for now := range ticks {
			r.aff.Tick(now)
		}
	}()
	// The owner rebuilds (at least 50 times) and a ticker ticks until the
	// pickers are done; the index's size is read while they pick.
	grewWhilePicking := false
owner:
	for k := 0; ; k++ {
		select {
		case <-picked:
			if k >= 50 {
				break owner
			}
		default:
			grewWhilePicking = grewWhilePicking || r.aff.idx.entries() > affMinEntries
		}
		ticks <- r.now
		nodes := staticNodes(1, 2, 3, 4, 5, 6, 7, 8)
		if k%2 == 1 {
			nodes = nodes[:6]
		}
		cur.Lock()
		r.rebuild(nodes, time.Second)
		cur.Unlock()
	}
	close(ticks)
	<-ticked
	if got := r.b.Registry().InFlight(); got != 0 {
		t.Fatalf("in flight %d after every request ended", got)
	}
	if !grewWhilePicking {
		t.Fatalf("the index did not grow while picks ran (%d entries now)", r.aff.idx.entries())
	}
}

func ExampleAffinity() {
	b, _ := NewBuilder(Config{}, nil)
	aff, _ := NewAffinity(AffinityConfig{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t := b.Build([]Node{{ID: "a", Addr: Address{HTTP: "10.0.0.1:8000"}, Capacity: 1}, {ID: "b", Addr: Address{HTTP: "10.0.0.2:8000"}, Capacity: 1}}, now)
	aff.Update(t, now, nil) // the table owner, before publishing t
	// Per request (gateway/prefix.Scan gives the points):
	req := &AffinityRequest{Hashes: []uint64{11, 22}, Ends: []uint32{512, 700}, Size: 700}
	first, _ := aff.Pick(t, req, nil)
	again, _ := aff.Pick(t, &AffinityRequest{Hashes: []uint64{11, 22, 33}, Ends: []uint32{512, 700, 900}, Size: 900}, nil)
	fmt.Println(first.Reason, again.Reason, again.Endpoint == first.Endpoint, again.Match)
	// Output: load prefix true 700
}
