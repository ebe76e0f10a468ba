package policysim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/bench/hist"
)

// Result is what one run measured. Latencies are from a request's arrival
// at the gateway to its completion, over requests that arrived after the
// warm-up.
type Result struct {
	Policy string
	Load   float64
	Nodes  int

	// Counts over measured requests. Arrived = Completed + Dropped + Failed.
	Arrived   int64
	Completed int64
	// Dropped: the chosen node's queue was full (a 429).
	Dropped int64
	// Failed: lost to churn (running or queued on a node that crashed or
	// was killed at the end of its grace period, or sent to a dead node
	// twice).
	Failed int64
	// Retried: picks that hit a crashed node and were retried elsewhere.
	Retried int64

	// Latency of completed requests.
	Latency hist.Histogram
	// P50, P99 and P999 count dropped and failed requests as infinitely
	// slow (+Inf when more than the quantile's share failed); in seconds.
	P50, P99, P999 float64
	// CompletedP99 is the p99 of completed requests alone, in seconds.
	CompletedP99 float64

	// Utilisation of the nodes alive for the whole measured window (busy
	// slot time / slot time): mean, max − min, and coefficient of variation.
	UtilMean, UtilSpread, UtilCV float64
	UtilNodes                    int

	// ByType is the latency of completed requests per card type (in the
	// order of Config.Types); Served counts them.
	ByType []hist.Histogram

	// InFlightAtEnd is the route's balancer in-flight count after the last
	// event: 0 when every Acquire was matched by a Release.
	InFlightAtEnd int64
	// AllArrived counts every request, warm-up included, and AllSettled
	// those that completed, were dropped or failed.
	AllArrived, AllSettled int64

	// Events is the number of events processed; Builds the tables built.
	Events, Builds int64
	// Wall is the real time the run took.
	Wall time.Duration
}

// Quantile returns the q-quantile of all measured requests in seconds,
// counting dropped and failed ones as +Inf.
func (r *Result) Quantile(q float64) float64 {
	if r.Arrived == 0 {
		return 0
	}
	rank := math.Ceil(q * float64(r.Arrived))
	if rank > float64(r.Completed) {
		return math.Inf(1)
	}
	return float64(r.Latency.Quantile(rank/float64(r.Completed))) / 1e9
}

type eventKind uint8

const (
	evDone eventKind = iota // a request finished service
	evHeartbeat
	evRebuild
	evNoiseStart
	evNoiseEnd
	evChurn
	evKill // a leaving node's grace ended
	evArrival
)

type event struct {
	t    float64
	seq  uint64
	kind eventKind
	gw   uint16 // the gateway of the request (evDone) or of the table (evRebuild)
	node int32
	gen  uint32  // node generation for evDone/evNoiseEnd/evKill validity
	arr  float64 // request arrival time (evDone)
}

type waiting struct {
	arr  float64
	size float64
	gw   uint16 // the gateway that sent it
}

type node struct {
	id       string
	typ      int
	capacity float64 // reported
	slots    int
	service  float64 // true mean service seconds (with the speed factor)
	gen      uint32  // bumped when the node dies, invalidating its events

	alive    bool
	crashed  bool    // dead by crash, possibly still listed
	leaving  bool    // graceful leave in progress; drops from the list
	listed   bool    // in the online list
	joinedAt float64 // 0 for the starting nodes
	lastBeat float64
	slow     float64 // current noisy-neighbour factor, 1 when none

	running int
	queue   []waiting // admitted beyond the batch slots, waiting inside the engine
	qhead   int

	// Time integrals of running requests.
	lastT   float64
	beatInt float64 // since the last heartbeat
	measInt float64 // within the measured window
	sample  balancer.Load
}

func (n *node) qlen() int { return len(n.queue) - n.qhead }

func (n *node) push(w waiting) { n.queue = append(n.queue, w) }

func (n *node) pop() waiting {
	w := n.queue[n.qhead]
	n.qhead++
	if n.qhead > 64 && n.qhead*2 > len(n.queue) {
		n.queue = append(n.queue[:0], n.queue[n.qhead:]...)
		n.qhead = 0
	}
	return w
}

// gateway is one gateway in front of the fleet: its own tables, endpoint
// in-flight counts and observations, as separate gateway processes have.
type gateway struct {
	builder *balancer.Builder
	table   *balancer.Table
	eps     []*balancer.Endpoint // by node index, set when the node first appears in a table
}

type sim struct {
	cfg  Config
	base time.Time
	end  float64 // arrivals stop
	warm float64

	work  *rand.Rand // arrivals, sizes, keys
	fleet *rand.Rand // node types, speeds, noise, churn

	nodes []*node
	alive []int32 // indexes of alive, non-leaving nodes (for noise/churn draws)
	pos   []int32 // pos[i] = index of node i in alive, or -1

	gws  []*gateway
	list []balancer.Node

	events heap
	seq    uint64

	rate      float64 // arrivals per second
	typeCum   []float64
	res       *Result
	slowCount int
}

// Run simulates cfg and returns what it measured. It returns early with
// ctx's error when ctx is done.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	bc, _ := balancerConfig(cfg.Policy)
	s := &sim{
		cfg:   cfg,
		base:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		end:   cfg.Duration.Seconds(),
		warm:  cfg.Warmup.Seconds(),
		work:  rand.New(rand.NewPCG(cfg.Seed, 0x5717c4)),
		fleet: rand.New(rand.NewPCG(cfg.Seed, 0xf1ee7)),
		res:   &Result{Policy: cfg.Policy, Load: cfg.Load, Nodes: cfg.Nodes, ByType: make([]hist.Histogram, len(cfg.Types))},
	}
	var sum float64
	for _, t := range cfg.Types {
		sum += t.Share
		s.typeCum = append(s.typeCum, sum)
	}
	for i := range s.typeCum {
		s.typeCum[i] /= sum
	}
	for range cfg.gateways() {
		reg := balancer.NewRegistry(func(id string, _ balancer.Address) any {
			i, _ := strconv.Atoi(id[1:])
			return int32(i)
		}, nil)
		b, err := balancer.NewBuilder(bc, reg)
		if err != nil {
			return nil, fmt.Errorf("policysim: %w", err)
		}
		s.gws = append(s.gws, &gateway{builder: b})
	}

	var capacity float64
	for range cfg.Nodes {
		n := s.newNode(0)
		n.listed = true
		capacity += float64(n.slots) / n.service
	}
	s.rate = cfg.Load * capacity

	// Noisy neighbours in steady state from the start: each node is slowed
	// with probability NoisyShare, for a residual time.
	if cfg.NoisyShare > 0 {
		for i := range s.nodes {
			if s.fleet.Float64() < cfg.NoisyShare {
				s.slowDown(int32(i), 0, true)
			}
		}
		s.schedule(event{t: s.noiseGap(), kind: evNoiseStart})
	}
	if cfg.ChurnPerMinute > 0 {
		s.schedule(event{t: s.churnGap(), kind: evChurn})
	}
	s.schedule(event{t: cfg.Heartbeat.Seconds(), kind: evHeartbeat})
	// Every gateway builds its first table at once, then rebuilds on its
	// own cycle, the cycles spread evenly over the period.
	for g := range s.gws {
		s.rebuild(0, g)
		off := cfg.Rebuild.Seconds() * float64(g) / float64(len(s.gws))
		s.schedule(event{t: cfg.Rebuild.Seconds() + 0.5 + off, kind: evRebuild, gw: uint16(g)})
	}
	s.schedule(event{t: s.work.ExpFloat64() / s.rate, kind: evArrival})

	for s.events.len() > 0 {
		e := s.events.pop()
		s.res.Events++
		if s.res.Events&0xfffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("policysim: %w", err)
			}
		}
		s.handle(e)
	}
	s.finish()
	for _, g := range s.gws {
		s.res.InFlightAtEnd += g.builder.Registry().InFlight()
	}
	s.res.Wall = time.Since(start)
	return s.res, nil
}

func (s *sim) at(t float64) time.Time { return s.base.Add(time.Duration(t * 1e9)) }

func (s *sim) schedule(e event) {
	s.seq++
	e.seq = s.seq
	s.events.push(e)
}

// periodic reports whether periodic work (heartbeats, rebuilds, noise,
// churn) still runs at t: until arrivals stop.
func (s *sim) periodic(t float64) bool { return t < s.end }

func (s *sim) newNode(t float64) *node {
	cfg := &s.cfg
	u := s.fleet.Float64()
	typ := 0
	for typ < len(s.typeCum)-1 && u > s.typeCum[typ] {
		typ++
	}
	ct := cfg.Types[typ]
	speed := math.Exp(cfg.SpeedSigma*s.fleet.NormFloat64() - cfg.SpeedSigma*cfg.SpeedSigma/2)
	i := len(s.nodes)
	n := &node{
		id:       "n" + strconv.Itoa(i),
		typ:      typ,
		capacity: ct.Capacity,
		slots:    ct.Slots,
		service:  ct.Service.Seconds() / speed,
		alive:    true,
		joinedAt: t,
		lastBeat: t,
		lastT:    t,
		slow:     1,
	}
	s.nodes = append(s.nodes, n)
	s.pos = append(s.pos, int32(len(s.alive)))
	s.alive = append(s.alive, int32(i))
	return n
}

// removeAlive takes node i out of the draw set.
func (s *sim) removeAlive(i int32) {
	p := s.pos[i]
	if p < 0 {
		return
	}
	last := s.alive[len(s.alive)-1]
	s.alive[p] = last
	s.pos[last] = p
	s.alive = s.alive[:len(s.alive)-1]
	s.pos[i] = -1
}

// integrate advances node n's running-request integrals to t.
func (s *sim) integrate(n *node, t float64) {
	dt := t - n.lastT
	if dt <= 0 {
		return
	}
	r := float64(n.running)
	n.beatInt += r * dt
	if lo := max(n.lastT, s.warm); t > lo && lo < s.end {
		n.measInt += r * (min(t, s.end) - lo)
	}
	n.lastT = t
}

func (s *sim) noiseGap() float64 {
	c := &s.cfg
	mean := (c.NoisyMinTime + c.NoisyMaxTime).Seconds() / 2
	// Onsets on non-slowed nodes at rate share·N/mean keep share slowed.
	rate := c.NoisyShare * float64(c.Nodes) / mean / (1 - c.NoisyShare)
	return s.fleet.ExpFloat64() / rate
}

func (s *sim) churnGap() float64 {
	rate := s.cfg.ChurnPerMinute * float64(s.cfg.Nodes) / 60
	return s.fleet.ExpFloat64() / rate
}

// slowDown starts a noisy-neighbour episode on node i at t. residual draws
// the remaining time of an episode already under way.
func (s *sim) slowDown(i int32, t float64, residual bool) {
	c := &s.cfg
	n := s.nodes[i]
	n.slow = c.NoisyMinFactor + s.fleet.Float64()*(c.NoisyMaxFactor-c.NoisyMinFactor)
	d := c.NoisyMinTime.Seconds() + s.fleet.Float64()*(c.NoisyMaxTime-c.NoisyMinTime).Seconds()
	if residual {
		d *= s.fleet.Float64()
	}
	s.slowCount++
	s.schedule(event{t: t + d, kind: evNoiseEnd, node: i, gen: n.gen})
}

func (s *sim) handle(e event) {
	switch e.kind {
	case evArrival:
		s.arrive(e.t)
		if next := e.t + s.work.ExpFloat64()/s.rate; next < s.end {
			s.schedule(event{t: next, kind: evArrival})
		}
	case evDone:
		s.done(e)
	case evHeartbeat:
		s.heartbeat(e.t)
		if next := e.t + s.cfg.Heartbeat.Seconds(); s.periodic(next) {
			s.schedule(event{t: next, kind: evHeartbeat})
		}
	case evRebuild:
		s.rebuild(e.t, int(e.gw))
		if next := e.t + s.cfg.Rebuild.Seconds(); s.periodic(next) {
			s.schedule(event{t: next, kind: evRebuild, gw: e.gw})
		}
	case evNoiseStart:
		// Draw from the whole fleet; a node already slowed is left alone.
		if len(s.alive) > 0 {
			i := s.alive[s.fleet.IntN(len(s.alive))]
			if s.nodes[i].slow == 1 {
				s.slowDown(i, e.t, false)
			}
		}
		if next := e.t + s.noiseGap(); s.periodic(next) {
			s.schedule(event{t: next, kind: evNoiseStart})
		}
	case evNoiseEnd:
		n := s.nodes[e.node]
		if n.gen == e.gen && n.alive {
			n.slow = 1
		}
	case evChurn:
		s.churn(e.t)
		if next := e.t + s.churnGap(); s.periodic(next) {
			s.schedule(event{t: next, kind: evChurn})
		}
	case evKill:
		n := s.nodes[e.node]
		if n.gen == e.gen && n.alive {
			s.kill(e.node, e.t)
		}
	}
}

// churn makes one random node leave and a new one join.
func (s *sim) churn(t float64) {
	if len(s.alive) > 1 {
		i := s.alive[s.fleet.IntN(len(s.alive))]
		n := s.nodes[i]
		s.removeAlive(i)
		if s.fleet.Float64() < s.cfg.CrashShare {
			s.kill(i, t)
			n.crashed = true // stays listed until its heartbeats time out
		} else {
			n.leaving = true // offline from its next heartbeat
			s.schedule(event{t: t + s.cfg.Grace.Seconds(), kind: evKill, node: i, gen: n.gen})
		}
	}
	s.newNode(t)
}

// kill ends node i at t: everything running or queued on it is lost.
func (s *sim) kill(i int32, t float64) {
	n := s.nodes[i]
	s.integrate(n, t)
	n.alive = false
	n.gen++ // its pending completions no longer count
	lost := n.running + n.qlen()
	// Count losses among measured requests and release them at their
	// gateways: queued ones are in the node's queue; running ones are
	// found through their completion events, which are then ignored.
	for k := n.qhead; k < len(n.queue); k++ {
		w := &n.queue[k]
		if w.arr >= s.warm {
			s.res.Failed++
		}
		s.gws[w.gw].eps[i].Release()
	}
	s.res.Failed += int64(s.lostRunning(i))
	s.res.AllSettled += int64(lost)
	n.running = 0
	n.queue = n.queue[:0]
	n.qhead = 0
}

// lostRunning releases the requests running on node i, whose completion
// events are still in the heap (and no longer count: the node's
// generation moved on), and returns how many of them were measured.
func (s *sim) lostRunning(i int32) int {
	k := 0
	for j := range s.events.h {
		e := &s.events.h[j]
		if e.kind == evDone && e.node == i && e.gen+1 == s.nodes[i].gen {
			s.gws[e.gw].eps[i].Release()
			if e.arr >= s.warm {
				k++
			}
		}
	}
	return k
}

func (s *sim) heartbeat(t float64) {
	ttl := s.cfg.HeartbeatTTL.Seconds()
	for _, n := range s.nodes {
		switch {
		case n.crashed:
			if n.listed && t-n.lastBeat >= ttl {
				n.listed = false
			}
			continue
		case !n.alive:
			continue
		case n.leaving:
			n.listed = false
		default:
			n.listed = true
		}
		s.integrate(n, t)
		dt := t - max(n.lastBeat, n.joinedAt)
		if dt > 0 {
			// Utilisation and concurrency are averages over the period;
			// running and waiting are gauges read at the beat, as an
			// agent scraping an engine's metrics reads them. The
			// simulation has no KV cache.
			c := n.beatInt / dt
			n.sample = balancer.Load{
				Utilisation: c / float64(n.slots), Concurrency: c,
				Running: float64(n.running), Waiting: float64(n.qlen()), KVCache: math.NaN(),
				SampledAt: s.at(t),
			}
			if hideQueue[s.cfg.Policy] {
				n.sample.Running, n.sample.Waiting = math.NaN(), math.NaN()
			}
		}
		n.beatInt = 0
		n.lastBeat = t
	}
}

// rebuild builds gateway g's next table from the online list and the
// nodes' latest samples.
func (s *sim) rebuild(t float64, g int) {
	s.list = s.list[:0]
	for _, n := range s.nodes {
		if !n.listed {
			continue
		}
		bn := balancer.Node{ID: n.id, Addr: balancer.Address{HTTP: n.id}, Capacity: n.capacity, State: balancer.Ready, Load: n.sample}
		if trueCapacity[s.cfg.Policy] {
			bn.Capacity = float64(n.slots) / (n.service * n.slow)
		}
		if n.joinedAt > 0 {
			bn.Since = s.at(n.joinedAt)
		}
		s.list = append(s.list, bn)
	}
	gw := s.gws[g]
	gw.table = gw.builder.Build(s.list, s.at(t))
	if k := len(s.nodes) - len(gw.eps); k > 0 {
		gw.eps = append(gw.eps, make([]*balancer.Endpoint, k)...)
	}
	for k := 0; k < gw.table.Len(); k++ {
		ep := gw.table.Endpoint(k)
		gw.eps[ep.Value().(int32)] = ep
	}
	s.res.Builds++
}

func (s *sim) arrive(t float64) {
	cfg := &s.cfg
	size := math.Exp(cfg.SizeSigma*s.work.NormFloat64() - cfg.SizeSigma*cfg.SizeSigma/2)
	key := s.work.Uint64()
	measured := t >= s.warm
	s.res.AllArrived++
	if measured {
		s.res.Arrived++
	}
	// The request's gateway: as if a load balancer in front spread
	// clients evenly (from the key's high bits, so no extra draw: every
	// gateway count sees the same workload).
	g := uint16((key >> 32) * uint64(len(s.gws)) >> 32)
	tb := s.gws[g].table
	ep, err := tb.Pick(key)
	if err == nil && !s.nodes[ep.Value().(int32)].alive {
		// Connection refused: retry once on another node at once.
		if measured {
			s.res.Retried++
		}
		ep, err = tb.PickAvoiding(key, []*balancer.Endpoint{ep})
		if err == nil && !s.nodes[ep.Value().(int32)].alive {
			err = errDead
		}
	}
	if err != nil {
		s.res.AllSettled++
		if measured {
			s.res.Failed++
		}
		return
	}
	i := ep.Value().(int32)
	n := s.nodes[i]
	ep.Acquire()
	if n.running < n.slots {
		s.start(i, t, waiting{arr: t, size: size, gw: g})
		return
	}
	if n.qlen() >= cfg.QueueSlots*n.slots {
		ep.Release()
		s.res.AllSettled++
		if measured {
			s.res.Dropped++
		}
		return
	}
	n.push(waiting{arr: t, size: size, gw: g})
}

// hideQueue names the policies (Extras: queue-blind) whose nodes report
// running and waiting as unknown, as agents did before issue 13: the
// default then picks on the gateway's in-flight counts alone.
var hideQueue = map[string]bool{"queue-blind": true}

// trueCapacity names the policies (set by tests) whose nodes report their
// true current throughput as capacity instead of the datasheet figure: an
// oracle no real weigher has, to show how much a perfect speed estimate
// is worth.
var trueCapacity = map[string]bool{}

var errDead = fmt.Errorf("policysim: node is dead")

func (s *sim) start(i int32, t float64, w waiting) {
	n := s.nodes[i]
	s.integrate(n, t)
	n.running++
	s.schedule(event{t: t + w.size*n.service*n.slow, kind: evDone, gw: w.gw, node: i, gen: n.gen, arr: w.arr})
}

func (s *sim) done(e event) {
	n := s.nodes[e.node]
	if e.gen != n.gen {
		return // the node died; counted in kill
	}
	s.integrate(n, e.t)
	n.running--
	s.gws[e.gw].eps[e.node].Complete()
	s.res.AllSettled++
	if e.arr >= s.warm {
		s.res.Completed++
		s.res.Latency.Record(int64((e.t - e.arr) * 1e9))
		s.res.ByType[n.typ].Record(int64((e.t - e.arr) * 1e9))
	}
	if n.qlen() > 0 {
		s.start(e.node, e.t, n.pop())
	}
}

func (s *sim) finish() {
	r := s.res
	r.P50, r.P99, r.P999 = r.Quantile(0.5), r.Quantile(0.99), r.Quantile(0.999)
	r.CompletedP99 = float64(r.Latency.Quantile(0.99)) / 1e9
	window := s.end - s.warm
	var us []float64
	for _, n := range s.nodes {
		if n.joinedAt > 0 || !(n.alive || n.leaving) {
			continue
		}
		if n.gen != 0 { // died during the run
			continue
		}
		s.integrate(n, s.end)
		us = append(us, n.measInt/(float64(n.slots)*window))
	}
	r.UtilNodes = len(us)
	if len(us) == 0 {
		return
	}
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, u := range us {
		lo, hi, sum = min(lo, u), max(hi, u), sum+u
	}
	mean := sum / float64(len(us))
	var v float64
	for _, u := range us {
		v += (u - mean) * (u - mean)
	}
	r.UtilMean, r.UtilSpread = mean, hi-lo
	if mean > 0 {
		r.UtilCV = math.Sqrt(v/float64(len(us))) / mean
	}
}
