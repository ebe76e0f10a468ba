package resource

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// record is one node as this instance knows it.
type record struct {
	// node is the client-visible record as of node.Version. It is replaced
	// wholesale, never modified in place, so copies handed out stay valid.
	node discovery.Node
	// owner is the instance that hears the node's heartbeats and decides its
	// liveness.
	owner    uint64
	inc, seq uint64
	// heard is when this instance last heard of the node (a heartbeat if it
	// owns it, a peer change otherwise), unix nanoseconds.
	heard int64
	// loadAt is when node.Load was last propagated, unix nanoseconds.
	loadAt int64
	// spread is this node's share (0..1) of the extra half LoadRefresh its
	// periodic load refresh waits, so nodes created together (after a
	// restart) do not all refresh in the same window.
	spread float64
	// addrRaw is the canonical encoding of node.Addresses, compared with
	// incoming heartbeats on the fast path; empty until the first fast-path
	// beat after a change computes it.
	addrRaw []byte
	// removed marks a tombstone, kept while the change log refers to it
	// and for at most TombstoneTTL after removedAt (unix nanoseconds).
	removed   bool
	removedAt int64
	// gone marks a record deleted from app.nodes but still in app.recs
	// (dropped at the next compaction).
	gone bool
	// auth is the credential whose checks the current node passed (nil
	// for a peer's change); the fast path only serves that credential.
	auth *credential
	// nonTarget is the version at which the node last stopped being a
	// routing target (0 while it is one).
	nonTarget uint64
}

// change is one node change to commit.
type change struct {
	node     discovery.Node
	owner    uint64
	inc, seq uint64
	heard    int64
	removed  bool
	auth     *credential // see record.auth
}

type logEntry struct {
	version uint64
	id      string
}

// subscriber is a gateway watching an app on this instance.
type subscriber struct {
	acked    uint64 // latest version of this epoch it acknowledged
	lastSeen int64
	watching int // long-polls in flight
}

// app is one application's online list. All fields are guarded by mu.
type app struct {
	name string
	self uint64 // this instance's id (immutable)

	mu       sync.Mutex
	nodes    map[string]*record
	recs     []*record // the same records as nodes, for fast iteration
	own      []*record // live records this instance owns, rebuilt when ownDirty
	ownDirty bool
	live     int
	version  uint64
	log      []logEntry
	logStart uint64 // a delta since v < logStart needs a reset
	notify   chan struct{}
	pending  map[string]*change
	dirty    bool // pending has changes for the next window
	subs     map[string]*subscriber
	expired  []int64 // when nodes expired by silence, for the guard
	// tombs lists removals in commit order, for the tombstone expiry.
	tombs []tomb
	gone  int // records in recs marked gone
	// waiters counts long-polls waiting on notify (with or without a
	// subscriber id); an app is not freed while one waits.
	waiters int
	// freed is set when the sweep removed the app from the server; a
	// holder of the pointer must look the app up again.
	freed bool
}

// tomb is one removal: the node and when it was removed.
type tomb struct {
	id string
	at int64
}

// newApp returns an empty app whose versions start after floor (the
// newest version of any app of this name freed before, so a subscriber of
// the freed app never mistakes the new one's versions for those it saw).
func newApp(name string, self, floor uint64) *app {
	return &app{
		name:     name,
		self:     self,
		version:  floor,
		logStart: floor,
		nodes:    make(map[string]*record),
		notify:   make(chan struct{}),
		pending:  make(map[string]*change),
		subs:     make(map[string]*subscriber),
	}
}

// emptyLocked reports whether the app holds nothing worth keeping: no
// node (tombstones included), no pending change, no subscriber, no
// long-poll.
func (a *app) emptyLocked() bool {
	return len(a.nodes) == 0 && len(a.pending) == 0 && len(a.subs) == 0 && a.waiters == 0
}

// commitLocked applies changes as one new version at now (unix
// nanoseconds) and wakes watchers.
func (a *app) commitLocked(chs []change, now int64) {
	if len(chs) == 0 {
		return
	}
	a.version++
	v := a.version
	for i := range chs {
		ch := &chs[i]
		rec := a.nodes[ch.node.ID]
		created := rec == nil
		if created {
			rec = &record{removed: true, spread: spreadOf(ch.node.ID)}
			a.nodes[ch.node.ID] = rec
			a.recs = append(a.recs, rec)
		}
		wasLive := !rec.removed
		wasOwn := wasLive && rec.owner == a.self
		wasTarget := wasLive && rec.node.State.Target()
		if ch.node.Load != rec.node.Load || !wasLive {
			rec.loadAt = ch.heard
		}
		rec.node = ch.node
		rec.node.Version = v
		rec.addrRaw = rec.addrRaw[:0] // recomputed by the next fast-path beat
		rec.owner, rec.inc, rec.seq, rec.heard, rec.auth = ch.owner, ch.inc, ch.seq, ch.heard, ch.auth
		rec.removed = ch.removed
		if ch.removed {
			rec.node.State = discovery.StateOffline
			if wasLive || created {
				rec.removedAt = now
				a.tombs = append(a.tombs, tomb{ch.node.ID, now})
			}
		}
		isTarget := !rec.removed && rec.node.State.Target()
		switch {
		case wasTarget && !isTarget:
			rec.nonTarget = v
		case isTarget:
			rec.nonTarget = 0
		case rec.nonTarget == 0:
			rec.nonTarget = v
		}
		if isOwn := !rec.removed && rec.owner == a.self; isOwn != wasOwn {
			a.ownDirty = true
		}
		if wasLive && rec.removed {
			a.live--
		} else if !wasLive && !rec.removed {
			a.live++
		}
		a.log = append(a.log, logEntry{v, ch.node.ID})
	}
	close(a.notify)
	a.notify = make(chan struct{})
	a.trimLogLocked()
}

// trimLogLocked bounds the change log to about twice the list size and drops
// tombstones no delta can refer to any more.
func (a *app) trimLogLocked() {
	limit := 2*len(a.nodes) + 1024
	if len(a.log) <= limit {
		return
	}
	cut := len(a.log) - limit/2
	// Never split one version across the cut.
	for cut < len(a.log) && a.log[cut].version == a.log[cut-1].version {
		cut++
	}
	a.logStart = a.log[cut-1].version
	a.log = append(a.log[:0:0], a.log[cut:]...)
	for _, rec := range a.recs {
		if rec.removed && !rec.gone && rec.node.Version <= a.logStart {
			a.forgetLocked(rec)
		}
	}
	a.compactLocked()
}

// forgetLocked deletes a tombstone from the index; it leaves recs at the
// next compaction. A delta meeting its id in the log reports it removed.
func (a *app) forgetLocked(rec *record) {
	if a.nodes[rec.node.ID] == rec {
		delete(a.nodes, rec.node.ID)
	}
	rec.gone = true
	a.gone++
}

// compactLocked drops forgotten records from recs.
func (a *app) compactLocked() {
	if a.gone == 0 {
		return
	}
	keep := a.recs[:0]
	for _, rec := range a.recs {
		if !rec.gone {
			keep = append(keep, rec)
		}
	}
	clear(a.recs[len(keep):])
	a.recs = keep
	a.gone = 0
	a.ownDirty = true
}

// expireTombstonesLocked forgets tombstones older than ttl at now (unix
// nanoseconds), so a removal does not order the node's reports forever
// (issue 12, item 10).
func (a *app) expireTombstonesLocked(now int64, ttl time.Duration) {
	i := 0
	for ; i < len(a.tombs) && now-a.tombs[i].at > int64(ttl); i++ {
		t := a.tombs[i]
		if rec := a.nodes[t.id]; rec != nil && rec.removed && rec.removedAt == t.at {
			a.forgetLocked(rec)
		}
	}
	if i > 0 {
		a.tombs = append(a.tombs[:0], a.tombs[i:]...)
	}
	if a.gone > 1024 || a.gone > len(a.recs)/4 {
		a.compactLocked()
	}
}

// orderLocked returns the record that orders reports of id at now: nil
// when there is none or only a tombstone older than ttl.
func (a *app) orderLocked(id string, now int64, ttl time.Duration) *record {
	rec := a.nodes[id]
	if rec != nil && rec.removed && now-rec.removedAt > int64(ttl) {
		return nil
	}
	return rec
}

// ownLocked returns the live records this instance owns (for the sweep).
func (a *app) ownLocked() []*record {
	if a.ownDirty {
		a.own = a.own[:0]
		for _, rec := range a.recs {
			if !rec.removed && rec.owner == a.self {
				a.own = append(a.own, rec)
			}
		}
		clear(a.own[len(a.own):cap(a.own)])
		a.ownDirty = false
	}
	return a.own
}

// snapshotLocked returns the whole list as a reset delta (copies of the
// nodes).
func (a *app) snapshotLocked(epoch uint64) discovery.Delta {
	d := discovery.Delta{App: a.name, Epoch: epoch, To: a.version, Reset: true, Upserts: make([]discovery.Node, 0, a.live)}
	for _, rec := range a.recs {
		if !rec.removed {
			d.Upserts = append(d.Upserts, rec.node)
		}
	}
	return d
}

// deltaLocked returns the changes after since (of epoch), or a reset.
func (a *app) deltaLocked(epoch, clientEpoch, since uint64) discovery.Delta {
	d := discovery.Delta{App: a.name, Epoch: epoch, From: since, To: a.version}
	if clientEpoch != epoch || since > a.version || since < a.logStart {
		return a.snapshotLocked(epoch)
	}
	if since == a.version {
		return d
	}
	i := sort.Search(len(a.log), func(i int) bool { return a.log[i].version > since })
	seen := make(map[string]struct{}, len(a.log)-i)
	for _, e := range a.log[i:] {
		if _, dup := seen[e.id]; dup {
			continue
		}
		seen[e.id] = struct{}{}
		rec := a.nodes[e.id]
		if rec == nil || rec.removed { // a forgotten tombstone is removed too
			d.Removes = append(d.Removes, e.id)
		} else {
			d.Upserts = append(d.Upserts, rec.node)
		}
	}
	return d
}

// spreadOf hashes id (FNV-1a) to a fraction in [0, 1).
func spreadOf(id string) float64 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return float64(h%1024) / 1024
}

// refreshDue reports whether rec's propagated load is old enough to send
// again even though it barely moved.
func refreshDue(rec *record, now int64, refresh time.Duration) bool {
	return now-rec.loadAt >= int64(float64(refresh)*(1+rec.spread/2))
}

// significant reports whether a beat's load differs enough from the
// propagated one to be worth a change: a quantity became known or unknown,
// the readiness changed, utilisation, KV-cache usage or prefix-cache hit
// rate moved by eps or more (absolute), a count (concurrency, running,
// waiting) moved by at least one and by eps or more relative to the larger
// value, or the queue started or stopped being empty. The prefix-cache
// counters grow with every request: they travel with the changes above and
// with the periodic refresh (LoadRefresh), never on their own. The LoRA
// adapters are compared by the callers (a heartbeat view carries them
// encoded): any change of the set is significant.
func significant(old, cur *discovery.Load, eps float64) bool {
	if old.Readiness != cur.Readiness {
		return true
	}
	if fracMoved(old.Utilisation, cur.Utilisation, eps) || fracMoved(old.KVCacheUsage, cur.KVCacheUsage, eps) || fracMoved(old.PrefixCacheHitRate, cur.PrefixCacheHitRate, eps) {
		return true
	}
	if old.PrefixCacheHits.IsKnown() != cur.PrefixCacheHits.IsKnown() || old.PrefixCacheQueries.IsKnown() != cur.PrefixCacheQueries.IsKnown() {
		return true
	}
	if countMoved(old.Concurrency, cur.Concurrency, eps) || countMoved(old.Running, cur.Running, eps) || countMoved(old.Waiting, cur.Waiting, eps) {
		return true
	}
	return (old.Waiting.Or(0) == 0) != (cur.Waiting.Or(0) == 0)
}

func fracMoved(old, cur discovery.Value, eps float64) bool {
	o, ok1 := old.Get()
	c, ok2 := cur.Get()
	if ok1 != ok2 {
		return true
	}
	return ok1 && math.Abs(o-c) >= eps
}

func countMoved(old, cur discovery.Value, eps float64) bool {
	o, ok1 := old.Get()
	c, ok2 := cur.Get()
	if ok1 != ok2 {
		return true
	}
	if !ok1 || o == c {
		return false
	}
	d := math.Abs(o - c)
	return d >= 1 && d >= eps*math.Max(o, c)
}

// sameIdentity reports whether two node records describe the same serving
// endpoint (everything but state, load and bookkeeping).
func sameIdentity(a, b *discovery.Node) bool {
	if a.Engine != b.Engine || a.Accelerator != b.Accelerator || a.Capacity != b.Capacity || len(a.Addresses) != len(b.Addresses) {
		return false
	}
	for k, v := range a.Addresses {
		if b.Addresses[k] != v {
			return false
		}
	}
	return true
}

// seqLess orders reports of one node.
func seqLess(inc1, seq1, inc2, seq2 uint64) bool {
	return inc1 < inc2 || (inc1 == inc2 && seq1 < seq2)
}
