package affinity

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/switchyard-dev/switchyard/balancer"
)

// policy places requests on nodes.
type policy interface {
	// pick returns the node for r, or -1 when no node is eligible.
	pick(s *sim, r *request) int32
	// refresh runs when engine metrics arrive (every Config.Refresh).
	refresh(s *sim, t float64)
	// done runs when r ends on its node.
	done(s *sim, r *request)
}

// policySpec describes a named policy of the comparison.
type policySpec struct {
	note string
	make func(s *sim) (policy, error)
}

// policies are the compared policies, by name.
var policies = map[string]policySpec{
	"default": {"what ships: prefix affinity bounded by load (balancer.Affinity) over the default two-choice pick", func(s *sim) (policy, error) {
		return newBalPolicy(s, balancer.Config{}, &balancer.AffinityConfig{}, false, false)
	}},
	"load-only": {"the default pick without affinity (two choices over learned-throughput weights)", func(s *sim) (policy, error) {
		return newBalPolicy(s, balancer.Config{}, nil, false, false)
	}},
	"p2c": {"power of two choices on in-flight counts (Envoy's least request), capacity weights", func(s *sim) (policy, error) {
		c, _ := balancer.NamedConfig("p2c")
		return newBalPolicy(s, c, nil, false, false)
	}},
	"session-hash": {"consistent hashing of the user with bounded load (ring-hash, factor 1.25)", func(s *sim) (policy, error) {
		c, _ := balancer.NamedConfig("ring-hash")
		return newBalPolicy(s, c, nil, true, false)
	}},
	"gie-scorer": {"GIE v1.5.0's default profile: queue 2, KV utilisation 2, prefix 3, max score", func(s *sim) (policy, error) {
		return newScorerPolicy(s, scorerWeights{queue: 2, kv: 2, prefix: 3}), nil
	}},
	"llm-d-scorer": {"llm-d's prefix-cache (1) and load-aware (1, threshold 128) scorers, max score", func(s *sim) (policy, error) {
		return newScorerPolicy(s, scorerWeights{prefix: 1, loadAware: 1, threshold: 128}), nil
	}},
	"gie-1-1-3": {"GIE's scorers with the weights issue 14 quotes: queue 1, KV utilisation 1, prefix 3", func(s *sim) (policy, error) {
		return newScorerPolicy(s, scorerWeights{queue: 1, kv: 1, prefix: 3}), nil
	}},
	"default+session": {"the default with session affinity on the user as well", func(s *sim) (policy, error) {
		return newBalPolicy(s, balancer.Config{}, &balancer.AffinityConfig{}, false, true)
	}},
}

// Policies lists the policies the comparison runs, the default first.
func Policies() []string {
	return []string{"default", "load-only", "gie-scorer", "llm-d-scorer", "p2c", "session-hash"}
}

// Extras lists extra rows: the GIE weights the issue quotes, and the
// default with session affinity.
func Extras() []string { return []string{"gie-1-1-3", "default+session"} }

// PolicyNames returns every known policy name, sorted.
func PolicyNames() []string {
	var out []string
	for n := range policies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// PolicyNote describes a policy for the report.
func PolicyNote(name string) string { return policies[name].note }

// balPolicy is a balancer table (rebuilt every Config.Rebuild from the
// nodes' load samples, in-flight counts live through Acquire/Complete),
// optionally under a balancer.Affinity.
type balPolicy struct {
	b       *balancer.Builder
	t       *balancer.Table
	aff     *balancer.Affinity
	byUser  bool // key the pick by the user (ring-hash)
	session bool // give the affinity the user as session
	nextAt  float64
	list    []balancer.Node
	req     balancer.AffinityRequest
	reports map[string]balancer.NodeReport
}

func newBalPolicy(s *sim, c balancer.Config, ac *balancer.AffinityConfig, byUser, session bool) (*balPolicy, error) {
	reg := balancer.NewRegistry(func(id string, _ balancer.Address) any {
		i, _ := strconv.Atoi(id[1:])
		return int32(i)
	}, nil)
	b, err := balancer.NewBuilder(c, reg)
	if err != nil {
		return nil, err
	}
	p := &balPolicy{b: b, byUser: byUser, session: session, reports: map[string]balancer.NodeReport{}}
	if ac != nil {
		if p.aff, err = balancer.NewAffinity(*ac); err != nil {
			return nil, err
		}
		p.req.Hashes = make([]uint64, 0, 128)
		p.req.Ends = make([]uint32, 0, 128)
	}
	p.rebuild(s, 0)
	return p, nil
}

func (p *balPolicy) rebuild(s *sim, t float64) {
	p.list = p.list[:0]
	for _, n := range s.nodes {
		p.list = append(p.list, balancer.Node{ID: nodeID(n.idx), Addr: balancer.Address{HTTP: nodeID(n.idx)}, Capacity: s.cfg.Fleet.Cards[n.card].Capacity, Load: n.sample})
		if p.aff != nil {
			p.reports[nodeID(n.idx)] = balancer.NodeReport{PrefixHits: n.snap.hits, PrefixQueries: n.snap.queries, PrefixCounts: true, HitRate: -1}
		}
	}
	p.t = p.b.Build(p.list, s.at(t))
	for k := 0; k < p.t.Len(); k++ {
		ep := p.t.Endpoint(k)
		s.nodes[ep.Value().(int32)].ep = ep
	}
	if p.aff != nil {
		p.aff.Update(p.t, s.at(t), func(id string) (balancer.NodeReport, bool) {
			r, ok := p.reports[id]
			return r, ok
		})
	}
	p.nextAt = t + s.cfg.Rebuild.Seconds()
}

func nodeID(i int32) string { return "n" + strconv.Itoa(int(i)) }

func (p *balPolicy) refresh(s *sim, t float64) {
	if t >= p.nextAt {
		p.rebuild(s, t)
	} else if p.aff != nil {
		p.aff.Tick(s.at(t))
	}
}

func (p *balPolicy) pick(s *sim, r *request) int32 {
	var key uint64
	if r.conv != nil {
		key = r.conv.user
	} else {
		key = s.pol.Uint64()
	}
	var ep *balancer.Endpoint
	if p.aff != nil {
		p.req.Key = key
		p.req.Hashes, p.req.Ends = r.points(p.req.Hashes, p.req.Ends)
		p.req.Size = uint32(r.prompt * 4)
		p.req.Session = 0
		if p.session && r.conv != nil {
			p.req.Session = r.conv.user
		}
		ch, err := p.aff.Pick(p.t, &p.req, nil)
		if err != nil {
			return -1
		}
		ep = ch.Endpoint
		if r.measured {
			s.res.Reasons[ch.Reason]++
		}
	} else {
		var err error
		if ep, err = p.t.Pick(key); err != nil {
			return -1
		}
	}
	ep.Acquire()
	return ep.Value().(int32)
}

func (p *balPolicy) done(s *sim, r *request) { s.nodes[r.node].ep.Complete() }

// scorerWeights is a scheduling profile of scorers and a max-score picker.
type scorerWeights struct {
	queue, kv, prefix, loadAware float64
	threshold                    float64 // load-aware scorer's queue threshold
}

// scorerPolicy reproduces the endpoint picker of the Gateway API Inference
// Extension (kubernetes-sigs/gateway-api-inference-extension v1.5.0,
// commit df9f8909fe06fe2dfd4a6fc0bd0c01a0acabf849) and of llm-d
// (llm-d/llm-d-inference-scheduler at 520af47896e5f06e43d09aca281a1149187b0ffd,
// deploy/config/epp-estimate-prefix-cache-config.yaml), from their code:
//
//   - queue-scorer (scorer/queuedepth/queue.go): min-max normalised
//     waiting queue, (max − w)/(max − min), 1 when all equal.
//   - kv-cache-utilization-scorer (scorer/kvcacheutilization): 1 − KV usage.
//   - load-aware-scorer (llm-d scorer/loadaware): 0.5 with an empty queue,
//     else 0.5 × (1 − min(w, threshold)/threshold), threshold 128.
//   - prefix-cache-scorer (scorer/prefix, with the approximate prefix
//     producer dataproducer/approximateprefix): the prompt is hashed in
//     blocks of 16 tokens × 4 characters, at most 256 blocks; a node's
//     score is the blocks matched / blocks hashed, matched counted
//     greedily over the blocks in order until one no node has
//     (matchLongestPrefix); after the pick the blocks are added to the
//     chosen node's LRU, whose size is the node's KV blocks (AutoTune, the
//     default: vLLM reports num_gpu_blocks; 31,250 on an H100).
//   - max-score-picker: the highest weighted sum, ties broken at random
//     (it shuffles, then sorts stably).
//
// Metrics (queue, KV usage) are the engines' as of the last refresh, at
// the same interval as the balancer's load samples.
type scorerPolicy struct {
	w      scorerWeights
	idx    *gieIndex
	hashes []uint64
	counts []int
}

// gieMaxBlocks and gieBlockTokens are GIE's defaults: 256 blocks of 16
// tokens (64 characters).
const (
	gieMaxBlocks   = 256
	gieBlockTokens = 16
)

func newScorerPolicy(s *sim, w scorerWeights) *scorerPolicy {
	caps := make([]int, len(s.nodes))
	for i, n := range s.nodes {
		caps[i] = n.kv.capacity()
	}
	return &scorerPolicy{w: w, idx: newGIEIndex(caps), counts: make([]int, len(s.nodes))}
}

func (p *scorerPolicy) refresh(*sim, float64) {}

func (p *scorerPolicy) done(*sim, *request) {}

func (p *scorerPolicy) pick(s *sim, r *request) int32 {
	n := min(r.prompt/gieBlockTokens, gieMaxBlocks)
	p.hashes = p.hashes[:0]
	for b := 0; b < n; b++ {
		p.hashes = append(p.hashes, r.st.blockID(b))
	}
	p.idx.match(p.hashes, p.counts)
	minQ, maxQ := 1<<30, -1
	for _, nd := range s.nodes {
		minQ, maxQ = min(minQ, nd.snap.waiting), max(maxQ, nd.snap.waiting)
	}
	best, ties := int32(-1), 0
	var bestScore float64
	for i, nd := range s.nodes {
		var score float64
		if p.w.prefix != 0 && n > 0 {
			score += p.w.prefix * float64(p.counts[i]) / float64(n)
		}
		if p.w.queue != 0 {
			q := 1.0
			if maxQ != minQ {
				q = float64(maxQ-nd.snap.waiting) / float64(maxQ-minQ)
			}
			score += p.w.queue * q
		}
		if p.w.kv != 0 {
			score += p.w.kv * (1 - nd.snap.kvUsage)
		}
		if p.w.loadAware != 0 {
			la := 0.5
			if w := float64(nd.snap.waiting); w > 0 {
				la = 0.5 * (1 - min(w, p.w.threshold)/p.w.threshold)
			}
			score += p.w.loadAware * la
		}
		switch {
		case best < 0 || score > bestScore:
			best, bestScore, ties = int32(i), score, 1
		case score == bestScore:
			// A uniform choice among equal scores, as shuffle-then-sort.
			ties++
			if s.pol.IntN(ties) == 0 {
				best = int32(i)
			}
		}
	}
	p.idx.add(p.hashes, int(best))
	return best
}

// gieIndex is GIE's approximate prefix index (approximateprefix/indexer.go):
// an LRU of block hashes per server, and for every hash the set of servers
// holding it (hashToPods); an LRU eviction takes the server out of the
// hash's set.
type gieIndex struct {
	servers []*lru
	sets    map[uint64]int32
	bits    [][nodeWords]uint64
	free    []int32
}

const nodeWords = maxNodes / 64

func newGIEIndex(caps []int) *gieIndex {
	x := &gieIndex{sets: make(map[uint64]int32)}
	for s, c := range caps {
		l := newLRU(c)
		l.onEvict = func(h uint64) { x.drop(h, s) }
		x.servers = append(x.servers, l)
	}
	return x
}

func (x *gieIndex) drop(h uint64, s int) {
	k, ok := x.sets[h]
	if !ok {
		return
	}
	set := &x.bits[k]
	set[s/64] &^= 1 << (s % 64)
	if set[0]|set[1]|set[2]|set[3] == 0 {
		delete(x.sets, h)
		x.free = append(x.free, k)
	}
}

// add records that server s got hashes (PreRequest: Add).
func (x *gieIndex) add(hashes []uint64, s int) {
	l := x.servers[s]
	for _, h := range hashes {
		if slot := l.find(h); slot >= 0 {
			l.touch(slot)
		} else {
			l.insert(h, false)
		}
		k, ok := x.sets[h]
		if !ok {
			if n := len(x.free); n > 0 {
				k = x.free[n-1]
				x.free = x.free[:n-1]
				x.bits[k] = [nodeWords]uint64{}
			} else {
				k = int32(len(x.bits))
				x.bits = append(x.bits, [nodeWords]uint64{})
			}
			x.sets[h] = k
		}
		x.bits[k][s/64] |= 1 << (s % 64)
	}
}

// match sets counts[s] to the blocks of hashes server s holds, over the
// hashes in order until one no server holds (matchLongestPrefix). The
// per-server counts are summed 256 servers at a time in bit-sliced
// counters.
func (x *gieIndex) match(hashes []uint64, counts []int) {
	var planes [9][nodeWords]uint64 // counts up to 511
	for _, h := range hashes {
		k, ok := x.sets[h]
		if !ok {
			break
		}
		carry := x.bits[k]
		for p := range planes {
			var any uint64
			for w := range carry {
				c := planes[p][w] & carry[w]
				planes[p][w] ^= carry[w]
				carry[w] = c
				any |= c
			}
			if any == 0 {
				break
			}
		}
	}
	for s := range counts {
		c := 0
		for p := range planes {
			c |= int(planes[p][s/64]>>(s%64)&1) << p
		}
		counts[s] = c
	}
}

// popcount is used by tests.
func popcount(set [nodeWords]uint64) int {
	n := 0
	for _, w := range set {
		n += bits.OnesCount64(w)
	}
	return n
}

var _ = fmt.Sprint
var _ = rand.Uint64
