package balancer

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Affinity is prefix-cache, session and LoRA affinity for one route
// (issue 14): a hint, bounded by load, layered over a Table's pick.
//
// It remembers where the route sent recent requests (an index of bounded
// size: prefix points, session keys and adapters, each with its node and
// time; see affIndex) and prefers, for a new request, the node that got
// the longest prefix of it, or its session, or its adapter, as long as
// that node's in-flight requests stay within LoadFactor × its weighted
// share of the route's (plus one): consistent hashing with bounded load
// in spirit (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
// Bounded Loads", SODA 2018). Otherwise, and for requests with nothing to
// match, the table's own pick decides (two choices over the weights, by
// default), so affinity never overrides capacity, learned throughput or
// exclusions.
//
// A pick costs O(log p) bucket reads for p prefix points and O(1) in the
// number of nodes; it allocates nothing.
//
// Engines' own prefix-cache hit counts calibrate the index per node
// (Update): where a node hits less than the gateway predicted, its cache
// holds less than the gateway assumed, and entries for it expire sooner.
//
// Pick is safe for concurrent use. Update and Tick belong to the route's
// table owner, which calls Update for every table it builds, before
// publishing it. An Affinity must not be copied.
type Affinity struct {
	_ noCopy

	cfg   AffinityConfig
	idx   affIndex
	clock atomic.Uint32 // seconds since base, set by Update and Tick
	views [affViewRing]atomic.Pointer[affView]

	// Owned by the table owner.
	base    time.Time
	started atomic.Bool // base is set: Tick may run
	nodes   map[*Endpoint]*affNode
	gen     uint64   // Update calls
	free    []uint32 // aids whose entries have all expired, reusable
	next    uint32   // aids handed out so far
	stats   []*[affChunk]affStats
}

// affViewRing is how many tables' views an Affinity keeps: a pick on a
// table a few versions old still finds its view.
const affViewRing = 8

// affChunk is how many nodes' stats are allocated at a time (never moved).
const affChunk = 256

// AffinityConfig configures an Affinity. The zero value is usable.
type AffinityConfig struct {
	// Entries is the index's largest size in entries (16 bytes each),
	// rounded up to a power of two. Default 1<<20 (16 MiB); 1024 to 1<<28.
	// Each request adds a few: the points of its prompt deeper than what
	// matched, its session and its adapter. The index takes no memory
	// until the route's first request with something to remember, then
	// 64 KiB, and grows fourfold at a Tick or Update while a quarter or
	// more of it is younger than MaxAge, up to this size.
	Entries int `yaml:"entries"`
	// MaxAge is how long an entry counts. Default 10 min. The engines'
	// prefix-cache reports shorten it per node (down to MinAge) where the
	// node's cache keeps less.
	MaxAge time.Duration `yaml:"max_age"`
	// MinAge is the shortest a node's calibrated horizon gets. Default
	// 15 s; at most MaxAge.
	MinAge time.Duration `yaml:"min_age"`
	// LoadFactor bounds a preferred node: it is taken only while its
	// in-flight requests are below LoadFactor × its weighted share of the
	// route's in-flight requests, plus one. Default 1.25; at least 1.
	LoadFactor float64 `yaml:"load_factor"`
	// MinMatch is the shortest prefix match, in characters (bytes of the
	// prompt stream, gateway/prefix), worth preferring a node for.
	// Default 256 (4 blocks).
	MinMatch int `yaml:"min_match"`
	// MaxAdapterNodes caps how many nodes one LoRA adapter is spread to
	// when the nodes that have it are over the load bound: below the cap
	// the normal pick may load it on another node; at the cap the least
	// loaded node that has it is taken anyway. Default 4; at least 1.
	MaxAdapterNodes int `yaml:"max_adapter_nodes"`
}

// Validate reports the first invalid field.
func (c *AffinityConfig) Validate() error {
	switch {
	case c.Entries != 0 && (c.Entries < 1024 || c.Entries > 1<<28):
		return fmt.Errorf("balancer: affinity: entries %d: must be 1024..%d (0 for the default %d)", c.Entries, 1<<28, 1<<20)
	case c.MaxAge < 0 || c.MaxAge > 24*time.Hour:
		return fmt.Errorf("balancer: affinity: max_age %v: must be in (0, 24h] (0 for the default 10m)", c.MaxAge)
	case c.MinAge < 0 || (c.MinAge > 0 && c.MaxAge > 0 && c.MinAge > c.MaxAge):
		return fmt.Errorf("balancer: affinity: min_age %v: must be positive and at most max_age", c.MinAge)
	case c.LoadFactor != 0 && !(c.LoadFactor >= 1 && c.LoadFactor <= 100):
		return fmt.Errorf("balancer: affinity: load_factor %v: must be in [1, 100] (0 for the default 1.25)", c.LoadFactor)
	case c.MinMatch < 0:
		return fmt.Errorf("balancer: affinity: min_match %d: must be >= 0", c.MinMatch)
	case c.MaxAdapterNodes < 0:
		return fmt.Errorf("balancer: affinity: max_adapter_nodes %d: must be >= 1 (0 for the default 4)", c.MaxAdapterNodes)
	}
	return nil
}

func (c AffinityConfig) withDefaults() AffinityConfig {
	if c.Entries == 0 {
		c.Entries = 1 << 20
	}
	if c.MaxAge == 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.MinAge == 0 {
		c.MinAge = min(15*time.Second, c.MaxAge)
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = 1.25
	}
	if c.MinMatch == 0 {
		c.MinMatch = 256
	}
	if c.MaxAdapterNodes == 0 {
		c.MaxAdapterNodes = 4
	}
	return c
}

// NewAffinity returns an empty Affinity for one route.
func NewAffinity(cfg AffinityConfig) (*Affinity, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Affinity{cfg: cfg, idx: newAffIndex(cfg.Entries, uint32(cfg.MaxAge/time.Second)), nodes: make(map[*Endpoint]*affNode)}, nil
}

// AffinityKey hashes a session key (a header value, the OpenAI "user"
// field) or a LoRA adapter's name for AffinityRequest. It never returns 0.
// gateway/prefix's Result.User is the same hash of the unescaped field.
func AffinityKey(b []byte) uint64 {
	if h := xxhash.Sum64(b); h != 0 {
		return h
	}
	return 1
}

// AffinityRequest is what affinity knows of one request. Its slices are
// only read, and only during Pick.
type AffinityRequest struct {
	// Key is passed to the table's own pick (hashing policies use it).
	Key uint64
	// Hashes and Ends are the prompt's prefix points, shallowest first
	// (gateway/prefix.Scan): Hashes[i] names the prompt's first Ends[i]
	// characters. Empty: no prefix affinity.
	Hashes []uint64
	Ends   []uint32
	// Size is the prompt's length in characters, for calibration.
	Size uint32
	// Session is AffinityKey of the request's session key; 0 for none.
	// A session is followed before the prefix.
	Session uint64
	// Adapter is AffinityKey of the LoRA adapter the request names; 0
	// for the base model. An adapter is followed before the session.
	Adapter uint64
}

// AffinityReason says why Pick chose a node.
type AffinityReason uint8

const (
	// ByLoad: the table's own pick (nothing matched, the match was short
	// or cached everywhere, or the preferred nodes were over the bound).
	ByLoad AffinityReason = iota
	// ByPrefix: the node got the longest prefix of the prompt.
	ByPrefix
	// BySession: the node served the request's session.
	BySession
	// ByAdapter: the node has the request's LoRA adapter loaded (or was
	// sent it lately).
	ByAdapter
)

func (r AffinityReason) String() string {
	switch r {
	case ByPrefix:
		return "prefix"
	case BySession:
		return "session"
	case ByAdapter:
		return "adapter"
	}
	return "load"
}

// Choice is the result of Affinity.Pick.
type Choice struct {
	Endpoint *Endpoint
	Reason   AffinityReason
	// Match is, for ByPrefix, the length in characters of the prefix the
	// node is believed to hold.
	Match uint32
}

// NodeReport is what a node's engine reports that affinity uses.
type NodeReport struct {
	// Adapters names the LoRA adapters the engine has loaded, running or
	// waiting (vLLM's vllm:lora_requests_info labels running_lora_adapters
	// and waiting_lora_adapters).
	Adapters []string
	// PrefixHits and PrefixQueries are the engine's cumulative prefix-cache
	// hit and query counts in tokens (vLLM's prefix_cache_hits and
	// prefix_cache_queries counters), read only when PrefixCounts is set.
	PrefixHits, PrefixQueries float64
	// PrefixCounts reports whether the engine reported both counters, zero
	// included: a known 0 (an engine that has served nothing yet) is the
	// starting point the next reading is compared with, while unknown
	// counters (the zero NodeReport) are ignored.
	PrefixCounts bool
	// HitRate is the engine's prefix-cache hit rate 0..1 for engines that
	// report a rate instead of counts (SGLang's cache_hit_rate); negative
	// when unknown. The counts win when both are given.
	HitRate float64
}

// affNode is the owner's record of one node.
type affNode struct {
	aid    uint32
	seen   uint64    // the Update that last listed it
	goneAt time.Time // when it was first missing; zero while listed

	// Calibration: cumulative engine counts at the last report, and what
	// was seen since the last evaluation.
	lastHits, lastQueries float64
	haveLast              bool
	accPred, accPrompt    float64 // gateway: predicted and total characters
	accHits, accQueries   float64 // engine: hit and query tokens
}

// affStats is a node's live state read and written by picks.
type affStats struct {
	predicted atomic.Uint64 // characters predicted cached at picks
	prompt    atomic.Uint64 // characters of the prompts picked
	horizon   atomic.Uint32 // seconds an entry for the node counts
}

// affView is an Affinity's view of one table: which table index each
// node's aid has, and the route-wide figures the bound needs.
type affView struct {
	version  uint64
	idxOf    []int32 // aid → table index of a ready node, or -1
	sumW     float64 // the ready nodes' weights
	factor   float64
	adapters map[uint64][]int32 // AffinityKey(adapter) → ready nodes that report it
	stats    []*[affChunk]affStats
}

func (v *affView) stat(aid uint32) *affStats { return &v.stats[aid/affChunk][aid%affChunk] }

// Salts separate the tags of sessions and adapters from prefix points.
const (
	sessionSalt = 0x5e55_10a5_5e55_10a5
	adapterSalt = 0xada9_7e25_ada9_7e25
)

// Pick chooses a node of t for r, preferring by adapter, session or
// prefix as described on Affinity, and records the choice for the
// requests that follow. avoid is skipped, as by Table.PickAvoiding (a
// retry). A table Update has not seen is picked from without affinity.
// Errors are the table's (ErrNoEndpoint).
func (a *Affinity) Pick(t *Table, r *AffinityRequest, avoid []*Endpoint) (Choice, error) {
	v := a.views[t.version%affViewRing].Load()
	if v == nil || v.version != t.version || r == nil || t.ready == 0 {
		var key uint64
		if r != nil {
			key = r.Key
		}
		ep, err := t.PickAvoiding(key, avoid)
		return Choice{Endpoint: ep}, err
	}
	now := a.clock.Load()
	total := float64(t.eps[0].total.Load())
	n := min(len(r.Hashes), len(r.Ends))
	var ch Choice
	i := int32(-1)
	if r.Adapter != 0 {
		if i = a.byAdapter(t, v, r.Adapter, avoid, now, total); i >= 0 {
			ch.Reason = ByAdapter
		}
	}
	if i < 0 && r.Session != 0 {
		hits, k := a.live(v, affTag(mix(r.Session^sessionSalt)), now)
		if i = a.newest(t, v, hits[:k], avoid, total); i >= 0 {
			ch.Reason = BySession
		}
	}
	deep, predicted, popular := -1, uint32(0), false
	if n > 0 {
		var hits [affWays]affHit
		var k int
		deep, hits, k = a.deepest(v, r.Hashes[:n], now)
		switch {
		case deep < 0 || r.Ends[deep] < uint32(a.cfg.MinMatch):
		case k == affWays:
			// As many nodes as a bucket holds have this prefix: it is
			// cached everywhere (a shared system prompt), and any node
			// will do; the load decides.
			predicted, popular = r.Ends[deep], true
		case i < 0:
			if i = a.leastLoaded(t, v, hits[:k], avoid, total, true); i >= 0 {
				ch.Reason, ch.Match = ByPrefix, r.Ends[deep]
				predicted = ch.Match
			}
		}
	}
	if i >= 0 {
		ch.Endpoint = t.eps[i]
	} else {
		ep, err := t.PickAvoiding(r.Key, avoid)
		if err != nil {
			return Choice{}, err
		}
		ch.Endpoint = ep
	}
	a.record(v, r, ch.Endpoint, deep, n, predicted, popular, now)
	return ch, nil
}

// live returns the entries of tag whose node is a ready node of v's table
// and younger than its horizon, one per node.
func (a *Affinity) live(v *affView, tag uint64, now uint32) (out [affWays]affHit, n int) {
	hits, k := a.idx.find(tag)
	for _, h := range hits[:k] {
		if int(h.aid) >= len(v.idxOf) || v.idxOf[h.aid] < 0 {
			continue
		}
		if now-h.stamp > v.stat(h.aid).horizon.Load() {
			continue
		}
		dup := false
		for _, o := range out[:n] {
			dup = dup || o.aid == h.aid
		}
		if !dup {
			out[n] = h
			n++
		}
	}
	return out, n
}

// deepest returns the deepest point of hashes that some node holds (by
// binary search: a node that got a prefix got every shorter one, so hits
// come before misses up to evictions) and its live entries; -1 when none.
func (a *Affinity) deepest(v *affView, hashes []uint64, now uint32) (int, [affWays]affHit, int) {
	var best [affWays]affHit
	bestN := 0
	lo, hi := -1, len(hashes)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if hits, k := a.live(v, affTag(hashes[m]), now); k > 0 {
			lo, best, bestN = m, hits, k
		} else {
			hi = m
		}
	}
	return lo, best, bestN
}

// admits reports whether node i may take one more request under the
// load bound: its in-flight requests are below factor × its weighted
// share of the route's, plus one (the bound of Config.LoadBound and of
// ring-hash).
func (v *affView) admits(t *Table, i int32, total float64) bool {
	return float64(t.live[i].s.inflight.Load()) < v.factor*total*t.weights[i]/v.sumW+1
}

// load is node i's in-flight requests per unit of weight, counting the
// request being placed.
func load(t *Table, i int32) float64 {
	return float64(t.live[i].s.inflight.Load()+1) / t.weights[i]
}

// leastLoaded returns the eligible node among hits with the least load
// per unit of weight, only among those the bound admits when bounded; -1
// when none.
func (a *Affinity) leastLoaded(t *Table, v *affView, hits []affHit, avoid []*Endpoint, total float64, bounded bool) int32 {
	best, bestLoad := int32(-1), math.Inf(1)
	for _, h := range hits {
		i := v.idxOf[h.aid]
		if !t.eligible(uint32(i), avoid) || (bounded && !v.admits(t, i, total)) {
			continue
		}
		if l := load(t, i); l < bestLoad {
			best, bestLoad = i, l
		}
	}
	return best
}

// newest returns, among the nodes of hits that are eligible and admitted
// by the bound, the one that got the tag last (the least loaded on a
// tie); -1 when none. A session follows its latest node.
func (a *Affinity) newest(t *Table, v *affView, hits []affHit, avoid []*Endpoint, total float64) int32 {
	best, bestStamp, bestLoad := int32(-1), uint32(0), math.Inf(1)
	for _, h := range hits {
		i := v.idxOf[h.aid]
		if !t.eligible(uint32(i), avoid) || !v.admits(t, i, total) {
			continue
		}
		newer := best < 0 || int32(h.stamp-bestStamp) > 0
		if l := load(t, i); newer || (h.stamp == bestStamp && l < bestLoad) {
			best, bestStamp, bestLoad = i, h.stamp, l
		}
	}
	return best
}

// maxAdapterScan bounds how many reporting nodes a pick looks at for an
// adapter, keeping the pick O(1).
const maxAdapterScan = 32

// byAdapter returns the node to use for an adapter, or -1 for the table's
// own pick: the least loaded node within the bound among those that
// report the adapter loaded or were sent it lately; at the cap of nodes
// per adapter, the least loaded of them regardless of the bound.
func (a *Affinity) byAdapter(t *Table, v *affView, adapter uint64, avoid []*Endpoint, now uint32, total float64) int32 {
	reported := v.adapters[adapter]
	if len(reported) > maxAdapterScan {
		reported = reported[:maxAdapterScan]
	}
	recent, k := a.live(v, affTag(mix(adapter^adapterSalt)), now)
	nodes := len(reported)
	best, bestLoad := int32(-1), math.Inf(1)
	anyBest, anyLoad := int32(-1), math.Inf(1)
	consider := func(i int32) {
		if !t.eligible(uint32(i), avoid) {
			return
		}
		l := load(t, i)
		if l < anyLoad {
			anyBest, anyLoad = i, l
		}
		if l < bestLoad && v.admits(t, i, total) {
			best, bestLoad = i, l
		}
	}
	for _, i := range reported {
		consider(i)
	}
	for _, h := range recent[:k] {
		i := v.idxOf[h.aid]
		dup := false
		for _, j := range reported {
			dup = dup || j == i
		}
		if !dup {
			nodes++
			consider(i)
		}
	}
	switch {
	case best >= 0:
		return best
	case nodes >= a.cfg.MaxAdapterNodes:
		return anyBest
	}
	return -1
}

// record remembers that r went to e: the points deeper than the deepest
// match (and that one, refreshed), the session and the adapter; and counts
// the characters predicted cached there, for calibration. A popular
// deepest point (every way of its bucket taken) is refreshed by one pick
// in popularRefresh only: it stays known without every pick of a shared
// system prompt writing the same cache line.
func (a *Affinity) record(v *affView, r *AffinityRequest, e *Endpoint, deep, n int, predicted uint32, popular bool, now uint32) {
	id := e.affinity.Load()
	if id == 0 {
		return // a node Update has not seen: nothing to index it by
	}
	aid := id - 1
	if r.Adapter != 0 {
		a.idx.insert(affTag(mix(r.Adapter^adapterSalt)), aid, now)
	}
	if r.Session != 0 {
		a.idx.insert(affTag(mix(r.Session^sessionSalt)), aid, now)
	}
	from := max(deep, 0)
	if popular && mix(r.Hashes[deep]^uint64(aid)^uint64(now))%popularRefresh != 0 {
		from = deep + 1
	}
	for k := from; k < n; k++ {
		a.idx.insert(affTag(r.Hashes[k]), aid, now)
	}
	if int(aid) < len(v.idxOf) {
		st := v.stat(aid)
		st.prompt.Add(uint64(r.Size))
		if predicted > 0 {
			st.predicted.Add(uint64(min(predicted, r.Size)))
		}
	}
}

// popularRefresh is how many picks of a popular prefix refresh it, one in.
const popularRefresh = 16

// Tick advances the Affinity's clock (entries' ages) to now between
// Updates, and grows the index when it fills up (allocating: the table
// owner calls Tick, about once a second). Safe for concurrent use; a
// no-op before the first Update.
func (a *Affinity) Tick(now time.Time) {
	if a.started.Load() {
		a.setClock(now)
		a.idx.grow(a.clock.Load())
	}
}

func (a *Affinity) setClock(now time.Time) {
	s := now.Sub(a.base) / time.Second
	if s < 1 {
		s = 1
	}
	if s > math.MaxUint32 {
		s = math.MaxUint32
	}
	if old := a.clock.Load(); uint32(s) > old {
		a.clock.CompareAndSwap(old, uint32(s))
	}
}

// calibrateMin is the prompt characters picked on a node between two
// evaluations of its calibration: enough requests that the engine's hit
// rate says something.
const calibrateMin = 256 << 10

// calibrateMinQueries is the engine's prefix-cache queries, in tokens,
// counted between two evaluations: a quarter of calibrateMin's characters
// at about four characters a token. The engine's counters reach the
// gateway a heartbeat or more after the requests the gateway counted at
// once; a rate judged from a few of them (the first turns of one
// conversation, say) would not be comparable with the gateway's.
const calibrateMinQueries = calibrateMin / 16

// Update makes t, just built, pickable with affinity: it gives new nodes
// an id, forgets nodes gone for longer than MaxAge, records the adapters
// each node reports and calibrates each node's horizon from its engine's
// prefix-cache counts. report returns a node's engine report (false when
// there is none); it may be nil. Call it for every table before
// publishing it, from the table's owner goroutine, with the table's time.
func (a *Affinity) Update(t *Table, now time.Time, report func(id string) (NodeReport, bool)) {
	if !a.started.Load() {
		a.base = now.Add(-time.Second)
		a.started.Store(true)
	}
	a.setClock(now)
	a.gen++
	for _, e := range t.eps {
		n := a.nodes[e]
		if n == nil {
			n = &affNode{aid: a.newAid()}
			a.nodes[e] = n
			e.affinity.Store(n.aid + 1)
		}
		n.seen, n.goneAt = a.gen, time.Time{}
	}
	// Forget nodes gone long enough that every entry for them has expired
	// (and then some, for picks from older tables): their ids can be reused.
	for e, n := range a.nodes {
		switch {
		case n.seen == a.gen:
		case n.goneAt.IsZero():
			n.goneAt = now
		case now.Sub(n.goneAt) > a.cfg.MaxAge+time.Minute:
			delete(a.nodes, e)
			a.free = append(a.free, n.aid)
		}
	}
	v := &affView{version: t.version, factor: a.cfg.LoadFactor, stats: a.stats, idxOf: make([]int32, a.next)}
	for k := range v.idxOf {
		v.idxOf[k] = -1
	}
	for i, e := range t.eps {
		n := a.nodes[e]
		ready := i < t.ready
		if ready {
			v.idxOf[n.aid] = int32(i)
			v.sumW += t.weights[i]
		}
		if report == nil {
			continue
		}
		rep, ok := report(e.id)
		if !ok {
			continue
		}
		// Every listed node is calibrated, ready or not, so that a node's
		// counters have their starting point before it takes traffic.
		a.calibrate(n, v.stat(n.aid), rep)
		if !ready {
			continue
		}
		for _, name := range rep.Adapters {
			if v.adapters == nil {
				v.adapters = make(map[uint64][]int32)
			}
			key := AffinityKey([]byte(name))
			v.adapters[key] = append(v.adapters[key], int32(i))
		}
	}
	if !(v.sumW > 0) {
		v.sumW = 1
	}
	a.views[t.version%affViewRing].Store(v)
	a.idx.grow(a.clock.Load())
}

// newAid returns a free node id, with its stats reset.
func (a *Affinity) newAid() uint32 {
	var aid uint32
	if k := len(a.free); k > 0 {
		aid = a.free[k-1]
		a.free = a.free[:k-1]
	} else {
		aid = a.next
		a.next++
		if int(aid/affChunk) >= len(a.stats) {
			a.stats = append(a.stats, new([affChunk]affStats))
		}
	}
	st := &a.stats[aid/affChunk][aid%affChunk]
	st.predicted.Store(0)
	st.prompt.Store(0)
	st.horizon.Store(uint32(a.cfg.MaxAge / time.Second))
	return aid
}

// calibrate folds a node's picks and engine report since the last Update
// into its calibration, and once enough prompt went there and the engine
// counted enough queries (from the first known reading of its counters,
// zero included) compares the engine's hit rate with the rate the gateway
// predicted: a node that hits
// much less than predicted keeps less than the index assumes, so its
// entries' horizon shrinks (×0.7, down to MinAge); one that hits as
// predicted gets it back (×1.25, up to MaxAge).
func (a *Affinity) calibrate(n *affNode, st *affStats, rep NodeReport) {
	pred := float64(st.predicted.Swap(0))
	prompt := float64(st.prompt.Swap(0))
	n.accPred += pred
	n.accPrompt += prompt
	switch {
	case rep.PrefixCounts && rep.PrefixHits >= 0 && rep.PrefixQueries >= 0: // not NaN
		if n.haveLast && rep.PrefixQueries >= n.lastQueries && rep.PrefixHits >= n.lastHits {
			n.accHits += rep.PrefixHits - n.lastHits
			n.accQueries += rep.PrefixQueries - n.lastQueries
		}
		n.lastHits, n.lastQueries, n.haveLast = rep.PrefixHits, rep.PrefixQueries, true
	case rep.HitRate >= 0 && rep.HitRate <= 1 && prompt > 0:
		n.accHits += rep.HitRate * prompt
		n.accQueries += prompt
	}
	if n.accPrompt < calibrateMin || !(n.accQueries >= calibrateMinQueries) {
		return
	}
	p := n.accPred / n.accPrompt
	h := n.accHits / n.accQueries
	n.accPred, n.accPrompt, n.accHits, n.accQueries = 0, 0, 0, 0
	if p < 0.05 {
		return // too little predicted to judge by
	}
	hz := float64(st.horizon.Load())
	switch {
	case h < 0.8*p:
		hz = max(hz*0.7, a.cfg.MinAge.Seconds())
	case h >= 0.95*p:
		hz = min(hz*1.25, a.cfg.MaxAge.Seconds())
	}
	st.horizon.Store(uint32(hz))
}

// Horizon returns how long entries for e count at present (MaxAge unless
// calibration by the engine's prefix-cache counts shortened it), or 0 for a
// node Update has not seen. Safe for concurrent use: it reads the newest
// view Update published (its stats never move).
func (a *Affinity) Horizon(e *Endpoint) time.Duration {
	id := e.affinity.Load()
	var v *affView
	for k := range a.views {
		if w := a.views[k].Load(); w != nil && (v == nil || w.version > v.version) {
			v = w
		}
	}
	if id == 0 || v == nil || int((id-1)/affChunk) >= len(v.stats) {
		return 0
	}
	return time.Duration(v.stat(id-1).horizon.Load()) * time.Second
}
