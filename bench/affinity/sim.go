package affinity

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	stdheap "container/heap"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/bench/hist"
	"github.com/switchyard-dev/switchyard/gateway/flow"
)

// Result is what one run measured, over the requests that arrived after
// the warm-up. TTFT is from a request's arrival at the gateway to its first
// token, latency to its last.
type Result struct {
	Fleet  string
	Policy string
	Load   float64
	Seed   uint64
	Nodes  int

	// Arrived counts measured requests; Completed those that finished;
	// Lost those turned away (queue timeouts, a full queue; the engines
	// never drop); Rejected those of them a full queue turned away or
	// displaced.
	Arrived, Completed, Lost, Rejected int64

	// TTFT and Latency of completed requests, all and by class.
	TTFT, Latency           hist.Histogram
	TTFTByClass, LatByClass [2]hist.Histogram // interactive, batch

	// HitTokens and PromptTokens are the engines' prefix-cache hits and
	// prompt tokens over measured requests: the prefix hit rate is their
	// ratio.
	HitTokens, PromptTokens float64

	// Reasons counts the default's picks by balancer.AffinityReason.
	Reasons [4]int64

	// UtilByCard is the mean slot utilisation per card type over the
	// measured window; ServedByCard the completed requests per card type.
	UtilByCard   []float64
	ServedByCard []int64
	// NodesIdle and NodesOver are the shares of nodes that ran on average
	// under a tenth of their Batch, and over 1.5 times it (past the point
	// where their throughput saturates), over the measured window.
	NodesIdle, NodesOver float64

	// Burst: TTFT of requests arriving in the burst or the minute after
	// it, the most waiting at once, and when the queue last emptied
	// (seconds after the burst began; 0 if it never queued).
	BurstTTFT  hist.Histogram
	BurstBatch hist.Histogram
	// TTFTByCard is the interactive TTFT per card type; BurstByCard the
	// same for the burst window.
	TTFTByCard, BurstByCard []hist.Histogram
	MaxQueued               int
	DrainedAfter            float64

	// HorizonByCard is, for the default, the mean horizon (seconds) the
	// engines' hit counts calibrated the affinity index to, per card type.
	HorizonByCard []float64

	// Workload is a digest of every conversation and job drawn: equal for
	// runs that saw the same traffic (common random numbers).
	Workload uint64
	// Leftover counts what was still held at the end: requests running on
	// nodes, pinned KV blocks, balancer in-flight counts. All zero when
	// every request was accounted for.
	Leftover int64

	Events int64
	Wall   time.Duration
}

// HitRate returns the prefix hit rate.
func (r *Result) HitRate() float64 {
	if r.PromptTokens == 0 {
		return 0
	}
	return r.HitTokens / r.PromptTokens
}

// Seconds returns the q-quantile of h in seconds.
func Seconds(h *hist.Histogram, q float64) float64 {
	if h.Count() == 0 {
		return math.NaN()
	}
	return float64(h.Quantile(q)) / 1e9
}

type eventKind uint8

const (
	evConv    eventKind = iota // a new conversation
	evTurn                     // a conversation's next turn
	evBatch                    // a batch job
	evBurst                    // a burst batch job
	evPrefill                  // a prefill ended
	evDecode                   // a request ended
	evRefresh                  // engine metrics reach the gateway
)

type event struct {
	t    float64
	seq  uint64
	kind eventKind
	node int32
	gen  uint32 // evDecode, evPrefill: the node's rate generation it was planned at
	c    *conv
}

type sim struct {
	cfg  Config
	base time.Time
	end  float64
	warm float64

	work  *rand.Rand // conversations, jobs, arrivals
	fleet *rand.Rand // node speeds
	pol   *rand.Rand // the policies' own draws

	nodes []*node
	p     policy
	res   *Result

	events heap
	seq    uint64

	convRate, batchRate, burstRate float64
	nextConv, nextJob              uint64

	// Flow control.
	queue      *flow.Fair[*request]
	inflight   int // requests on nodes
	batchIn    int // batch requests on nodes
	limit      int // Σ per-node limits
	batchLimit int // batch starts only below this many on nodes (flow.Config.Reserve)
	maxQueued  int
	deadlines  [2]float64 // queue deadlines by class, seconds
	burstStart float64
	burstEnd   float64
}

// burstRecovery is how long after a burst its window lasts: arrivals then
// still meet the backlog.
const burstRecovery = 60

// Run simulates cfg and returns what it measured.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	s := &sim{
		cfg:   cfg,
		base:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		end:   cfg.Duration.Seconds(),
		warm:  cfg.Warmup.Seconds(),
		work:  rand.New(rand.NewPCG(cfg.Seed, 0xa11)),
		fleet: rand.New(rand.NewPCG(cfg.Seed, 0xf1ee7)),
		pol:   rand.New(rand.NewPCG(cfg.Seed, 0x9011c7)),
	}
	s.res = &Result{Fleet: cfg.Fleet.Name, Policy: cfg.Policy, Load: cfg.Load, Seed: cfg.Seed, Nodes: cfg.Fleet.Nodes,
		UtilByCard: make([]float64, len(cfg.Fleet.Cards)), ServedByCard: make([]int64, len(cfg.Fleet.Cards)),
		TTFTByCard: make([]hist.Histogram, len(cfg.Fleet.Cards)), BurstByCard: make([]hist.Histogram, len(cfg.Fleet.Cards))}
	s.buildFleet()
	var err error
	if s.p, err = policies[cfg.Policy].make(s); err != nil {
		return nil, fmt.Errorf("affinity: %w", err)
	}
	if cfg.FlowControl {
		s.queue = flow.NewFair[*request](1)
		s.batchLimit = flow.BatchLimit(s.limit, cfg.Reserve)
		s.maxQueued, s.deadlines = cfg.queueSettings()
	}
	s.schedule(event{t: s.work.ExpFloat64() / s.convRate, kind: evConv})
	if s.batchRate > 0 {
		s.schedule(event{t: s.work.ExpFloat64() / s.batchRate, kind: evBatch})
	}
	if b := cfg.Burst; b != nil {
		s.burstStart, s.burstEnd = b.At.Seconds(), (b.At + b.For).Seconds()
		s.burstRate = b.Load * s.capacity()
		s.schedule(event{t: s.burstStart + s.work.ExpFloat64()/s.burstRate, kind: evBurst})
	}
	s.schedule(event{t: cfg.Refresh.Seconds(), kind: evRefresh})
	for s.events.len() > 0 {
		e := s.events.pop()
		s.res.Events++
		if s.res.Events&0xfffff == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("affinity: %w", ctx.Err())
		}
		s.handle(e)
	}
	s.finish()
	s.res.Wall = time.Since(start)
	return s.res, nil
}

// capacity is the fleet's decode capacity in requests per second: each
// node saturated (Batch sequences, steps of 2 TPOT) at its card's nominal
// speed.
func (s *sim) capacity() float64 {
	w := &s.cfg.Workload
	meanOut := (1-w.BatchShare)*w.OutTokens + w.BatchShare*w.BatchOut
	var c float64
	for _, n := range s.nodes {
		k := s.cfg.Fleet.Cards[n.card]
		c += k.Batch / (2 * k.TPOT.Seconds() * meanOut)
	}
	return c
}

func (s *sim) buildFleet() {
	cfg := &s.cfg
	var sum float64
	for _, k := range cfg.Fleet.Cards {
		sum += k.Share
	}
	// Cards in proportion to their shares, in a random order.
	cards := make([]int, 0, cfg.Fleet.Nodes)
	for i, k := range cfg.Fleet.Cards {
		n := int(math.Round(k.Share / sum * float64(cfg.Fleet.Nodes)))
		for range n {
			cards = append(cards, i)
		}
	}
	for len(cards) < cfg.Fleet.Nodes {
		cards = append(cards, 0)
	}
	cards = cards[:cfg.Fleet.Nodes]
	s.fleet.Shuffle(len(cards), func(i, j int) { cards[i], cards[j] = cards[j], cards[i] })
	for i, c := range cards {
		k := cfg.Fleet.Cards[c]
		sig := cfg.SpeedSigma
		speed := math.Exp(sig*s.fleet.NormFloat64() - sig*sig/2)
		s.nodes = append(s.nodes, &node{
			idx: int32(i), card: c, batch: k.Batch, limit: int(k.Batch),
			tpot:    k.TPOT.Seconds() / speed,
			prefill: k.PrefillRate * speed,
			kv:      newLRU(k.KVBlocks),
		})
		s.limit += int(k.Batch)
	}
	rate := cfg.Load * s.capacity()
	w := &cfg.Workload
	s.batchRate = w.BatchShare * rate
	s.convRate = (1 - w.BatchShare) * rate / w.MeanTurns
}

func (s *sim) at(t float64) time.Time { return s.base.Add(time.Duration(t * 1e9)) }

func (s *sim) schedule(e event) {
	s.seq++
	e.seq = s.seq
	s.events.push(e)
}

func (s *sim) handle(e event) {
	switch e.kind {
	case evConv:
		s.nextConv++
		c := newConv(s.work, &s.cfg.Workload, s.nextConv)
		for _, tn := range c.turns {
			s.res.Workload = mix64(s.res.Workload ^ uint64(tn.user)<<40 ^ uint64(tn.out)<<20 ^ uint64(c.fam))
		}
		s.arrive(c.request(&s.cfg.Workload), e.t)
		if next := e.t + s.work.ExpFloat64()/s.convRate; next < s.end {
			s.schedule(event{t: next, kind: evConv})
		}
	case evTurn:
		if e.t < s.end {
			s.arrive(e.c.request(&s.cfg.Workload), e.t)
		}
	case evBatch, evBurst:
		s.nextJob++
		r := batchRequest(s.work, &s.cfg.Workload, s.nextJob)
		s.res.Workload = mix64(s.res.Workload ^ uint64(r.prompt)<<20 ^ uint64(r.out))
		s.arrive(r, e.t)
		rate, stop := s.batchRate, s.end
		if e.kind == evBurst {
			rate, stop = s.burstRate, s.burstEnd
		}
		if next := e.t + s.work.ExpFloat64()/rate; next < stop {
			s.schedule(event{t: next, kind: e.kind})
		}
	case evPrefill:
		if n := s.nodes[e.node]; e.gen == n.pgen {
			s.prefilled(e.t, n)
		}
	case evDecode:
		if n := s.nodes[e.node]; e.gen == n.gen {
			s.decoded(e.t, n)
		}
	case evRefresh:
		s.refresh(e.t)
		if next := e.t + s.cfg.Refresh.Seconds(); next < s.end {
			s.schedule(event{t: next, kind: evRefresh})
		}
	}
}

func class(r *request) int {
	if r.batch {
		return 1
	}
	return 0
}

// arrive is a request reaching the gateway.
func (s *sim) arrive(r *request, t float64) {
	r.arrive = t
	r.measured = t >= s.warm
	if r.measured {
		s.res.Arrived++
	}
	if s.queue != nil && !s.room(r) {
		tenant := "batch"
		if r.conv != nil {
			tenant = nodeID(int32(r.conv.id % 1e6))
		}
		if s.queue.Len() >= s.maxQueued {
			// Full: the newest waiter of a lower class makes way, or
			// the arrival is turned away (gateway/flow's Enter).
			victim := s.queue.Newest(flow.Class(class(r)))
			if victim == nil {
				s.turnAway(r)
				return
			}
			s.turnAway(victim.Value)
			s.queue.Remove(victim)
		}
		s.queue.Push(flow.Class(class(r)), tenant, 1, r)
		s.res.MaxQueued = max(s.res.MaxQueued, s.queue.Len())
		return
	}
	s.send(r, t)
}

// turnAway counts r lost to a full queue (a 429 for its client).
func (s *sim) turnAway(r *request) {
	if r.measured {
		s.res.Lost++
		s.res.Rejected++
	}
}

// room reports whether r may go to a node now under flow control: the
// route has a free slot (for batch: fewer requests of any class on the
// nodes than the batch limit, gateway/flow's trunk reservation), and
// nobody of r's class or a more urgent one waits.
func (s *sim) room(r *request) bool {
	if s.inflight >= s.limit {
		return false
	}
	if r.batch {
		return s.inflight < s.batchLimit && s.queue.Len() == 0
	}
	return s.queue.LenClass(flow.Interactive) == 0
}

// send picks a node for r and hands it to the node's engine.
func (s *sim) send(r *request, t float64) {
	i := s.p.pick(s, r)
	if i < 0 {
		if s.queue == nil {
			panic("affinity: no node to pick without flow control")
		}
		s.queue.Push(flow.Class(class(r)), "retry", 1, r)
		return
	}
	n := s.nodes[i]
	r.node = i
	n.inflight++
	s.inflight++
	if r.batch {
		s.batchIn++
	}
	if s.queue != nil && n.inflight >= n.limit && n.ep != nil {
		n.ep.Exclude(balancer.ExcludeOverload)
	}
	n.waiting.push(r)
	s.admit(n, t)
}

// admit starts waiting requests on n while its KV pool has room.
func (s *sim) admit(n *node, t float64) {
	for n.waiting.len() > 0 && float64(n.running) < maxRunning*n.batch {
		r := n.waiting.peek()
		if !n.admit(r) {
			break
		}
		n.waiting.pop()
		n.integrate(t, s.warm, s.end)
		n.running++
		r.admit = t
		if r.measured {
			s.res.HitTokens += float64(r.cached)
			s.res.PromptTokens += float64(r.prompt)
		}
		s.startPrefill(n, r, t)
	}
}

// maxRunning bounds a node's running requests at this many times Batch:
// vLLM's max_num_seqs (256) is about 2.5 times the batch at which an H100
// serving an 8B model saturates. With prefix sharing the KV pool often
// binds only later.
const maxRunning = 2.5

// startPrefill adds r to n's prefills. A forward pass reads the weights
// once (as a decode step does), then computes the uncached tokens: the
// work is those tokens and stepBase × TPOT at the prefill rate.
func (s *sim) startPrefill(n *node, r *request, t float64) {
	n.advance(t)
	n.advancePrefill(t)
	work := float64(r.prompt-r.cached) + stepBase*n.tpot*n.prefill
	stdheap.Push(&n.pre, decoding{n.pv + work, r})
	s.reschedule(n, t)
	s.reschedulePrefill(n, t)
}

// reschedulePrefill plans n's next prefill end at the current sharing.
func (s *sim) reschedulePrefill(n *node, t float64) {
	n.pgen++
	if len(n.pre) > 0 {
		s.schedule(event{t: max(t, n.nextPrefilled()), kind: evPrefill, node: n.idx, gen: n.pgen})
	}
}

// prefilled ends the prefills of n that are done: their first token
// comes now, and they start decoding.
func (s *sim) prefilled(t float64, n *node) {
	n.advance(t)
	n.advancePrefill(t)
	for len(n.pre) > 0 && n.pre[0].finish <= n.pv+1e-6 {
		r := stdheap.Pop(&n.pre).(decoding).r
		r.first = t // the prefill's forward pass yields the first token
		n.startDecode(r)
	}
	s.reschedule(n, t)
	s.reschedulePrefill(n, t)
}

// reschedule plans n's next decode completion at its current rate; the
// plan made at an older rate is dropped when it comes up.
func (s *sim) reschedule(n *node, t float64) {
	n.gen++
	if len(n.dec) > 0 {
		s.schedule(event{t: max(t, n.nextDone()), kind: evDecode, node: n.idx, gen: n.gen})
	}
}

// decoded ends the sequences of n that have all their tokens.
func (s *sim) decoded(t float64, n *node) {
	n.advance(t)
	for len(n.dec) > 0 && n.dec[0].finish <= n.v+1e-9 {
		s.finished(t, n.popDecoded())
	}
	s.reschedule(n, t)
	s.admit(n, t)
	s.dispatch(t)
}

func (s *sim) finished(t float64, r *request) {
	n := s.nodes[r.node]
	n.integrate(t, s.warm, s.end)
	n.running--
	n.release(r)
	n.inflight--
	s.inflight--
	if r.batch {
		s.batchIn--
	}
	r.done = t
	s.p.done(s, r)
	if s.queue != nil && n.ep != nil && n.inflight < n.limit {
		n.ep.Include(balancer.ExcludeOverload)
	}
	if r.measured {
		s.record(r)
	}
	if c := r.conv; c != nil && c.next < len(c.turns) {
		s.schedule(event{t: t + c.turns[c.next].think, kind: evTurn, c: c})
	}
}

// dispatch sends queued requests while the route has room (flow control:
// every Leave hands its slot on).
func (s *sim) dispatch(t float64) {
	if s.queue == nil {
		return
	}
	for s.queue.Len() > 0 && s.inflight < s.limit {
		if s.queue.LenClass(flow.Interactive) == 0 && s.inflight >= s.batchLimit {
			break // the rest of the slots are kept for interactive requests
		}
		r, c, _ := s.queue.Pop()
		if t-r.arrive > s.deadlines[c] {
			if r.measured {
				s.res.Lost++
			}
			continue
		}
		s.send(r, t)
	}
	if s.queue.Len() == 0 && s.res.MaxQueued > 0 && t > s.burstStart {
		s.res.DrainedAfter = t - s.burstStart // the last time it emptied
	}
}

func (s *sim) record(r *request) {
	res := s.res
	c := class(r)
	ttft := int64((r.first - r.arrive) * 1e9)
	lat := int64((r.done - r.arrive) * 1e9)
	res.Completed++
	res.TTFT.Record(ttft)
	res.Latency.Record(lat)
	res.TTFTByClass[c].Record(ttft)
	res.LatByClass[c].Record(lat)
	card := s.nodes[r.node].card
	res.ServedByCard[card]++
	if c == 0 {
		res.TTFTByCard[card].Record(ttft)
	}
	if s.cfg.Burst != nil && r.arrive >= s.burstStart && r.arrive < s.burstEnd+burstRecovery {
		if c == 0 {
			res.BurstTTFT.Record(ttft)
			res.BurstByCard[card].Record(ttft)
		} else {
			res.BurstBatch.Record(ttft)
		}
	}
}

// refresh is engine metrics reaching the gateway: load samples for the
// balancer, queue and KV usage for the scorers, prefix-cache counts.
func (s *sim) refresh(t float64) {
	for _, n := range s.nodes {
		n.integrate(t, s.warm, s.end)
		if dt := t - n.lastBeat; dt > 0 {
			c := n.busyInt / dt
			n.sample = balancer.Load{Utilisation: min(1, c/n.batch), Concurrency: c, SampledAt: s.at(t)}
		}
		n.busyInt, n.lastBeat = 0, t
		n.snap = snapshot{
			waiting: n.waiting.len(), running: n.running,
			kvUsage: float64(n.kv.pinned) / float64(n.kv.capacity()),
			hits:    n.hits, queries: n.query,
		}
	}
	s.p.refresh(s, t)
	if debugHook != nil {
		debugHook(s, t)
	}
}

// debugHook, if set (tests), runs after every refresh.
var debugHook func(s *sim, t float64)

func (s *sim) finish() {
	if bp, ok := s.p.(*balPolicy); ok && bp.aff != nil {
		s.res.HorizonByCard = make([]float64, len(s.cfg.Fleet.Cards))
		count := make([]int, len(s.cfg.Fleet.Cards))
		for _, n := range s.nodes {
			s.res.HorizonByCard[n.card] += bp.aff.Horizon(n.ep).Seconds()
			count[n.card]++
		}
		for k := range count {
			s.res.HorizonByCard[k] /= float64(max(count[k], 1))
		}
	}
	for _, n := range s.nodes {
		s.res.Leftover += int64(n.running + n.waiting.len() + n.kv.pinned)
		if n.ep != nil {
			s.res.Leftover += n.ep.InFlight()
		}
	}
	window := s.end - s.warm
	count := make([]int, len(s.cfg.Fleet.Cards))
	for _, n := range s.nodes {
		n.integrate(s.end, s.warm, s.end)
		u := n.measInt / (n.batch * window)
		s.res.UtilByCard[n.card] += u
		count[n.card]++
		if u < 0.1 {
			s.res.NodesIdle++
		}
		if u > 1.5 {
			s.res.NodesOver++
		}
	}
	for i := range count {
		if count[i] > 0 {
			s.res.UtilByCard[i] /= float64(count[i])
		}
	}
	s.res.NodesIdle /= float64(len(s.nodes))
	s.res.NodesOver /= float64(len(s.nodes))
	if s.queue != nil {
		for s.queue.Len() > 0 {
			r, _, _ := s.queue.Pop()
			if r.measured {
				s.res.Lost++
			}
		}
	}
}
