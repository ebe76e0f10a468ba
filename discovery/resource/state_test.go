package resource

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// fakeClock is a manual clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t.UnixNano()
}

func testServer(t *testing.T, mod func(*Config)) (*Server, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	s, err := newServer(cfg, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// appFor returns the app, created if need be (unlocked).
func (s *Server) appFor(name string) *app {
	a, _ := s.lockApp(name, true, true)
	a.mu.Unlock()
	return a
}

func beat(id string, st discovery.State, seq uint64, util float64) *discovery.Heartbeat {
	return &discovery.Heartbeat{
		ID: id, App: "app", Addresses: map[string]string{"http": "127.0.0.1:1"}, Capacity: 1,
		State: st, Load: discovery.Load{Utilisation: discovery.Known(util)}, Incarnation: 1, Seq: seq,
	}
}

func (s *Server) stateOf(id string) (discovery.State, bool) {
	a := s.appFor("app")
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.nodes[id]
	if rec == nil || rec.removed {
		return discovery.StateOffline, false
	}
	return rec.node.State, true
}

func (s *Server) version() uint64 {
	a := s.appFor("app")
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

func TestLivenessStateMachine(t *testing.T) {
	s, clk := testServer(t, nil)
	now := clk.Add(0)
	s.ingest(beat("n", discovery.StateReady, 1, 0.5), now, trusted)
	if _, ok := s.stateOf("n"); ok {
		t.Fatal("a new node must wait for the window")
	}
	s.flush()
	steps := []struct {
		after time.Duration
		want  discovery.State
		live  bool
	}{
		{1400 * time.Millisecond, discovery.StateReady, true},
		{200 * time.Millisecond, discovery.StateSuspect, true},  // 1.6 s > 1.5 s
		{1300 * time.Millisecond, discovery.StateSuspect, true}, // 2.9 s
		{200 * time.Millisecond, discovery.StateOffline, false}, // 3.1 s > 3 beats
	}
	for i, st := range steps {
		s.sweep(clk.Add(st.after))
		got, live := s.stateOf("n")
		if got != st.want || live != st.live {
			t.Fatalf("step %d: state %s live %v, want %s live %v", i, got, live, st.want, st.live)
		}
	}
	if s.stats.expired.Load() != 1 {
		t.Fatalf("expired %d", s.stats.expired.Load())
	}
}

func TestSuspectRecoversAndDrainIsImmediate(t *testing.T) {
	s, clk := testServer(t, nil)
	s.ingest(beat("n", discovery.StateReady, 1, 0.5), clk.Add(0), trusted)
	s.flush()
	s.sweep(clk.Add(1600 * time.Millisecond))
	if st, _ := s.stateOf("n"); st != discovery.StateSuspect {
		t.Fatalf("want suspect, got %s", st)
	}
	s.ingest(beat("n", discovery.StateReady, 2, 0.5), clk.Add(0), trusted)
	s.flush()
	if st, _ := s.stateOf("n"); st != discovery.StateReady {
		t.Fatalf("want ready again, got %s", st)
	}
	v := s.version()
	s.ingest(beat("n", discovery.StateDraining, 3, 0.5), clk.Add(0), trusted)
	if st, _ := s.stateOf("n"); st != discovery.StateDraining || s.version() != v+1 {
		t.Fatalf("draining must skip the window: %s at version %d (was %d)", st, s.version(), v)
	}
	// A stale beat (lower seq) changes nothing.
	s.ingest(beat("n", discovery.StateReady, 2, 0.5), clk.Add(0), trusted)
	s.flush()
	if st, _ := s.stateOf("n"); st != discovery.StateDraining {
		t.Fatalf("stale beat applied: %s", st)
	}
	// draining ⇄ ready
	s.ingest(beat("n", discovery.StateReady, 4, 0.5), clk.Add(0), trusted)
	s.flush()
	if st, _ := s.stateOf("n"); st != discovery.StateReady {
		t.Fatalf("undrain: %s", st)
	}
	s.ingest(beat("n", discovery.StateOffline, 5, 0.5), clk.Add(0), trusted)
	if _, live := s.stateOf("n"); live {
		t.Fatal("offline must remove at once")
	}
}

func TestUnchangedBeatsCostNoVersion(t *testing.T) {
	s, clk := testServer(t, nil)
	s.ingest(beat("n", discovery.StateReady, 1, 0.50), clk.Add(0), trusted)
	s.flush()
	v := s.version()
	for i := range 5 {
		s.ingest(beat("n", discovery.StateReady, uint64(2+i), 0.52), clk.Add(time.Second), trusted)
		s.flush()
	}
	if s.version() != v {
		t.Fatalf("insignificant load moves bumped the version %d → %d", v, s.version())
	}
	s.ingest(beat("n", discovery.StateReady, 10, 0.9), clk.Add(time.Second), trusted)
	s.flush()
	if s.version() != v+1 {
		t.Fatalf("a significant load move must commit once")
	}
}

func TestExpiryGuard(t *testing.T) {
	s, clk := testServer(t, nil)
	now := clk.Add(0)
	for i := range 10 {
		s.ingest(beat(fmt.Sprintf("n%d", i), discovery.StateReady, 1, 0.5), now, trusted)
	}
	s.flush()
	s.sweep(clk.Add(3100 * time.Millisecond))
	live := 0
	for i := range 10 {
		if _, ok := s.stateOf(fmt.Sprintf("n%d", i)); ok {
			live++
		}
	}
	if live != 5 || s.stats.guardHeld.Load() != 5 {
		t.Fatalf("guard: %d live, %d held; want 5 and 5", live, s.stats.guardHeld.Load())
	}
	// After the guard window, the rest may go (in steps).
	s.sweep(clk.Add(11 * time.Second))
	s.sweep(clk.Add(11 * time.Second))
	s.sweep(clk.Add(11 * time.Second))
	s.sweep(clk.Add(11 * time.Second))
	for i := range 10 {
		if _, ok := s.stateOf(fmt.Sprintf("n%d", i)); ok {
			t.Fatalf("n%d still listed after the guard windows", i)
		}
	}
}

func TestOrphansWaitForReHome(t *testing.T) {
	s, clk := testServer(t, nil)
	const peer = 77
	now := clk.Add(0)
	pc := peerChange{app: "app", change: change{
		node:  discovery.Node{ID: "p1", App: "app", Addresses: map[string]string{"http": "h:1"}, State: discovery.StateReady},
		owner: peer, inc: 1, seq: 1,
	}}
	pc2 := pc
	pc2.change.node.ID = "p2"
	s.applyPeer(peer, batchChanges, []peerChange{pc, pc2}, map[string]map[string]struct{}{})
	s.peers.mu.Lock()
	s.peers.lost[peer] = now
	s.peers.mu.Unlock()
	// p1 re-homes here within the grace and keeps beating; p2 never does.
	clk.Add(500 * time.Millisecond)
	for i := range 6 {
		now := clk.Add(time.Second) // 1.5 s … 6.5 s after the loss
		s.ingest(beat("p1", discovery.StateReady, uint64(2+i), 0), now, trusted)
		s.flush()
		s.sweep(now)
		_, listed := s.stateOf("p2")
		if want := now-int64(time.Unix(1_000_000, 0).UnixNano()) <= int64(5*time.Second); listed != want {
			t.Fatalf("%.1fs after the loss: p2 listed %v, want %v", float64(now-1_000_000e9)/1e9, listed, want)
		}
		if st, ok := s.stateOf("p1"); !ok || st != discovery.StateReady {
			t.Fatal("re-homed node lost")
		}
	}
}

func TestDeltas(t *testing.T) {
	s, clk := testServer(t, nil)
	a := s.appFor("app")
	for i := range 4 {
		s.ingest(beat(fmt.Sprintf("n%d", i), discovery.StateReady, 1, 0.5), clk.Add(0), trusted)
	}
	s.flush()
	v1 := s.version()
	s.ingest(beat("n1", discovery.StateDraining, 2, 0.5), clk.Add(0), trusted)
	s.ingest(beat("n2", discovery.StateOffline, 2, 0.5), clk.Add(0), trusted)
	a.mu.Lock()
	d := a.deltaLocked(s.id, s.id, v1)
	full := a.deltaLocked(s.id, 12345, v1)
	none := a.deltaLocked(s.id, s.id, a.version)
	a.mu.Unlock()
	if d.Reset || len(d.Upserts) != 1 || d.Upserts[0].ID != "n1" || len(d.Removes) != 1 || d.Removes[0] != "n2" {
		t.Fatalf("delta %+v", d)
	}
	if !full.Reset || len(full.Upserts) != 3 {
		t.Fatalf("other epoch must reset with the whole list: %+v", full)
	}
	if none.From != none.To || len(none.Upserts)+len(none.Removes) != 0 {
		t.Fatalf("no-change delta %+v", none)
	}
	// Push the log past its bound: an old version then resets.
	for i := 0; i < 3000; i++ {
		s.ingest(beat("n0", []discovery.State{discovery.StateDraining, discovery.StateReady}[i%2], uint64(10+i), 0.5), clk.Add(0), trusted)
		s.flush()
	}
	a.mu.Lock()
	old := a.deltaLocked(s.id, s.id, v1)
	a.mu.Unlock()
	if !old.Reset {
		t.Fatal("a version older than the log must reset")
	}
}

// TestAdaptersAndCountersPropagation: a change of a node's LoRA adapters
// commits a version; prefix-cache counters that only grow do not, until
// the periodic refresh carries them.
func TestAdaptersAndCountersPropagation(t *testing.T) {
	s, clk := testServer(t, nil)
	hb := beat("n", discovery.StateReady, 1, 0.5)
	hb.Load.PrefixCacheHits, hb.Load.PrefixCacheQueries = discovery.Known(0), discovery.Known(0)
	s.ingest(hb, clk.Add(0), trusted)
	s.flush()
	v := s.version()
	for i := range 3 {
		hb.Seq++
		hb.Load.PrefixCacheHits, hb.Load.PrefixCacheQueries = discovery.Known(float64(100*i)), discovery.Known(float64(300*i))
		s.ingest(hb, clk.Add(time.Second), trusted)
		s.flush()
	}
	if s.version() != v {
		t.Fatalf("growing counters bumped the version %d → %d", v, s.version())
	}
	hb.Seq++
	hb.Load.LoRA, _ = discovery.NewAdapters([]string{"sql-lora"}, nil)
	s.ingest(hb, clk.Add(time.Second), trusted)
	s.flush()
	if s.version() != v+1 {
		t.Fatalf("an adapter loaded: version %d → %d, want one commit", v, s.version())
	}
	clk.Add(time.Minute)
	hb.Seq++
	hb.Load.PrefixCacheQueries = discovery.Known(5000)
	s.ingest(hb, clk.Add(time.Second), trusted)
	s.flush()
	a := s.appFor("app")
	a.mu.Lock()
	got := a.nodes["n"].node.Load
	a.mu.Unlock()
	if got.PrefixCacheQueries != discovery.Known(5000) || got.LoRA != hb.Load.LoRA {
		t.Fatalf("after the refresh period: %+v", got)
	}
}

func TestFastPath(t *testing.T) {
	s, clk := testServer(t, nil)
	hb := beat("n", discovery.StateReady, 1, 0.5)
	hb.Addresses = map[string]string{"http": "127.0.0.1:1", "grpc": "127.0.0.1:2"}
	lora, _ := discovery.NewAdapters([]string{"sql-lora"}, nil)
	hb.Load.LoRA, hb.Load.PrefixCacheHits, hb.Load.PrefixCacheQueries = lora, discovery.Known(100), discovery.Known(400)
	s.ingest(hb, clk.Add(0), trusted)
	s.flush()
	view := func(mod func(h *discovery.Heartbeat)) *discovery.HeartbeatView {
		h := *hb
		h.Seq++
		hb.Seq++
		mod(&h)
		var v discovery.HeartbeatView
		if err := discovery.DecodeHeartbeatView(discovery.AppendHeartbeat(nil, &h, discovery.CurrentVersion), &v, discovery.CurrentVersion); err != nil {
			t.Fatal(err)
		}
		return &v
	}
	tests := []struct {
		name string
		mod  func(h *discovery.Heartbeat)
		fast bool
	}{
		{"same", func(h *discovery.Heartbeat) {}, true},
		{"small load move", func(h *discovery.Heartbeat) { h.Load.Utilisation = discovery.Known(0.52) }, true},
		{"big load move", func(h *discovery.Heartbeat) { h.Load.Utilisation = discovery.Known(0.9) }, false},
		{"absurd load", func(h *discovery.Heartbeat) { h.Load.Utilisation = discovery.Known(7.3) }, false},
		{"utilisation unknown", func(h *discovery.Heartbeat) { h.Load.Utilisation = discovery.Unknown }, false},
		{"queue becomes known", func(h *discovery.Heartbeat) { h.Load.Waiting = discovery.Known(0) }, false},
		{"readiness", func(h *discovery.Heartbeat) { h.Load.Readiness = discovery.ReadinessAsleep }, false},
		// Prefix-cache counters grow with every request: they travel with
		// the periodic refresh, not on their own.
		{"prefix counters grow", func(h *discovery.Heartbeat) {
			h.Load.PrefixCacheHits, h.Load.PrefixCacheQueries = discovery.Known(5000), discovery.Known(9000)
		}, true},
		{"prefix counters unknown", func(h *discovery.Heartbeat) { h.Load.PrefixCacheHits = discovery.Unknown }, false},
		{"hit rate becomes known", func(h *discovery.Heartbeat) { h.Load.PrefixCacheHitRate = discovery.Known(0.4) }, false},
		{"adapter loaded", func(h *discovery.Heartbeat) {
			h.Load.LoRA, _ = discovery.NewAdapters([]string{"sql-lora", "chat-lora"}, nil)
		}, false},
		{"adapters unknown", func(h *discovery.Heartbeat) { h.Load.LoRA = discovery.Adapters{} }, false},
		{"draining", func(h *discovery.Heartbeat) { h.State = discovery.StateDraining }, false},
		{"address", func(h *discovery.Heartbeat) { h.Addresses = map[string]string{"http": "127.0.0.1:9"} }, false},
		{"capacity", func(h *discovery.Heartbeat) { h.Capacity = 2 }, false},
		{"engine", func(h *discovery.Heartbeat) { h.Engine = "tgi" }, false},
		{"unknown node", func(h *discovery.Heartbeat) { h.ID = "other" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := s.version()
			now := clk.Add(100 * time.Millisecond)
			if got := s.fastBeat(view(tc.mod), now, trusted); got != tc.fast {
				t.Fatalf("fast path %v, want %v", got, tc.fast)
			}
			if s.version() != v {
				t.Fatal("the fast path must not commit")
			}
			if tc.fast {
				a := s.appFor("app")
				a.mu.Lock()
				heard := a.nodes["n"].heard
				a.mu.Unlock()
				if heard != now {
					t.Fatal("the fast path must refresh liveness")
				}
			}
		})
	}
}

// TestNoPermanentTombstones (issue 12, item 10): a forged offline beat
// with incarnation 2^64−1 is refused and removes nothing; a stale
// incarnation is refused with the incarnation to adopt; a tombstone orders
// reports only for TombstoneTTL.
func TestNoPermanentTombstones(t *testing.T) {
	s, clk := testServer(t, nil)
	now := clk.Add(0)
	hb := beat("n", discovery.StateReady, 1, 0.5)
	hb.Incarnation = uint64(now) - uint64(time.Hour) // started an hour ago
	if r := s.ingest(hb, now, trusted); r != nil {
		t.Fatal(r)
	}
	s.flush()

	forged := *hb
	forged.State, forged.Incarnation, forged.Seq = discovery.StateOffline, math.MaxUint64, 1
	r := s.ingest(&forged, clk.Add(0), trusted)
	if r == nil || r.reason != discovery.ReasonInvalid || r.field != "incarnation" || r.hint != uint64(clk.Add(0)) {
		t.Fatalf("forged incarnation: %+v", r)
	}
	if st, ok := s.stateOf("n"); !ok || st != discovery.StateReady {
		t.Fatal("a refused beat removed the node")
	}

	// Within the skew the incarnation is accepted: the node's agent
	// restarts with its clock 50 s ahead, then goes offline.
	ahead := *hb
	ahead.Incarnation, ahead.Seq, ahead.State = uint64(clk.Add(0))+uint64(50*time.Second), 1, discovery.StateOffline
	if r := s.ingest(&ahead, clk.Add(0), trusted); r != nil {
		t.Fatal(r)
	}
	if _, ok := s.stateOf("n"); ok {
		t.Fatal("offline must remove the node")
	}
	// Its clock is stepped back and it restarts: stale, with a hint.
	back := *hb
	back.Incarnation, back.Seq = uint64(clk.Add(time.Second)), 1
	r = s.ingest(&back, clk.Add(0), trusted)
	if r == nil || r.reason != discovery.ReasonStale || r.hint != ahead.Incarnation+1 {
		t.Fatalf("stale incarnation: %+v", r)
	}
	back.Incarnation, back.Seq = r.hint, 1
	if r := s.ingest(&back, clk.Add(0), trusted); r != nil {
		t.Fatalf("the hinted incarnation must be accepted: %v", r)
	}
	s.flush()
	if st, ok := s.stateOf("n"); !ok || st != discovery.StateReady {
		t.Fatal("the recovered agent's node is not listed")
	}

	// A tombstone stops ordering after TombstoneTTL: a lower incarnation
	// is then a new node.
	off := back
	off.State, off.Seq = discovery.StateOffline, 2
	if r := s.ingest(&off, clk.Add(0), trusted); r != nil {
		t.Fatal(r)
	}
	low := *hb
	low.Seq = 5
	if r := s.ingest(&low, clk.Add(time.Second), trusted); r == nil || r.reason != discovery.ReasonStale {
		t.Fatalf("within the TTL a lower incarnation is stale: %v", r)
	}
	s.sweep(clk.Add(31 * time.Second))
	a := s.appFor("app")
	a.mu.Lock()
	_, kept := a.nodes["n"]
	a.mu.Unlock()
	if kept {
		t.Fatal("the tombstone outlived TombstoneTTL")
	}
	if r := s.ingest(&low, clk.Add(0), trusted); r != nil {
		t.Fatalf("after the TTL a lower incarnation is a new node: %v", r)
	}
	s.flush()
	if _, ok := s.stateOf("n"); !ok {
		t.Fatal("node not listed after its tombstone expired")
	}
}

// TestForgottenTombstoneStillReachesDeltas: a subscriber whose version
// predates a removal learns it even after the tombstone was forgotten.
func TestForgottenTombstoneStillReachesDeltas(t *testing.T) {
	s, clk := testServer(t, nil)
	for i := range 3 {
		s.ingest(beat(fmt.Sprintf("n%d", i), discovery.StateReady, 1, 0.5), clk.Add(0), trusted)
	}
	s.flush()
	v := s.version()
	s.ingest(beat("n1", discovery.StateOffline, 2, 0.5), clk.Add(0), trusted)
	for i := range 4 { // keep the others alive while the tombstone ages
		now := clk.Add(10 * time.Second)
		s.ingest(beat("n0", discovery.StateReady, uint64(3+i), 0.5), now, trusted)
		s.ingest(beat("n2", discovery.StateReady, uint64(3+i), 0.5), now, trusted)
		s.flush()
		s.sweep(now)
	}
	a := s.appFor("app")
	a.mu.Lock()
	_, kept := a.nodes["n1"]
	d := a.deltaLocked(s.id, s.id, v)
	a.mu.Unlock()
	if kept {
		t.Fatal("tombstone not forgotten")
	}
	if d.Reset || !slices.Contains(d.Removes, "n1") {
		t.Fatalf("delta since %d lost the removal: %+v", v, d)
	}
}

// TestEmptyAppsAreFreed (issue 12, item 11): an app whose nodes left, whose
// tombstones expired and that nobody watches leaves memory; a new app of
// the same name starts above the old versions, so a subscriber of the old
// one is never confused.
func TestEmptyAppsAreFreed(t *testing.T) {
	s, clk := testServer(t, nil)
	s.ingest(beat("n", discovery.StateReady, 1, 0.5), clk.Add(0), trusted)
	s.flush()
	a := s.appFor("app")
	a.mu.Lock()
	if _, rf := s.ackLocked(a, "gw", s.id, a.version, clk.Add(0)); rf != nil {
		t.Fatal(rf)
	}
	a.mu.Unlock()
	s.ingest(beat("n", discovery.StateOffline, 2, 0.5), clk.Add(0), trusted)
	old := s.version()
	held := func() bool {
		s.appsMu.RLock()
		defer s.appsMu.RUnlock()
		return s.apps["app"] != nil
	}
	s.sweep(clk.Add(20 * time.Second)) // the subscriber went quiet, the tombstone is young
	if !held() {
		t.Fatal("freed while a tombstone was young")
	}
	s.sweep(clk.Add(11 * time.Second)) // 31 s: tombstone and subscriber expired
	if held() {
		t.Fatal("an empty, unwatched app was not freed")
	}
	if !a.freed || s.stats.appsFreed.Load() != 1 {
		t.Fatal("the freed app is not marked")
	}
	// A subscriber that knew version `old` is told nothing changed (the
	// app was empty then and is empty now); one further behind is reset.
	b := s.appFor("app")
	b.mu.Lock()
	same := b.deltaLocked(s.id, s.id, old)
	behind := b.deltaLocked(s.id, s.id, old-1)
	b.mu.Unlock()
	if same.Reset || same.From != same.To || !behind.Reset {
		t.Fatalf("after re-creation: delta since %d %+v, since %d %+v", old, same, old-1, behind)
	}
	s.ingest(beat("n", discovery.StateReady, 3, 0.5), clk.Add(0), trusted)
	s.flush()
	if v := s.version(); v <= old {
		t.Fatalf("new version %d not above the freed app's %d", v, old)
	}
}
