package health

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Bounds of the checker's own work.
const (
	// maxWorkers bounds the probes of one route in flight at once. A
	// probe lasts at most the timeout, so with every node hung a route
	// keeps a 1 s interval up to 2×maxWorkers nodes at the default 500 ms
	// timeout; beyond that its probes space out.
	maxWorkers = 32
	// noneRecheck is how often a node found without a health endpoint is
	// asked again, in case it grew one.
	noneRecheck = 30 * time.Second
	// jitter spreads each node's probes by ±10 % of the interval, so the
	// nodes of a route (and routes) do not probe in step.
	jitter = 0.1
)

// Member is one node of the route as its owner sees it after a table
// build.
type Member struct {
	Endpoint *balancer.Endpoint
	Node     *upstream.Node
	// Ready: the node is Ready in the table (others are not judged).
	Ready bool
	// Engine is the engine the node reports through discovery; "" when
	// unknown (static nodes).
	Engine string
	// NoHTTP: the node has only a gRPC address (it is not probed).
	NoHTTP bool
}

// Deps are what a Checker needs besides its route's config.
type Deps struct {
	// Metrics may be nil (no metrics).
	Metrics *Metrics
	// Log receives exclusions (warning) and recoveries (info).
	Log *slog.Logger
}

// Checker watches the nodes of one route (see the package doc). Create it
// with New, feed it with SetMembers, run it with Run. A nil *Checker
// (both mechanisms disabled) does nothing. Safe for concurrent use.
type Checker struct {
	// Immutable after New.
	route  string
	hc     config.HealthCheckConfig
	oc     config.OutlierConfig
	rules  rules
	m      *Metrics
	log    *slog.Logger
	tick   time.Duration
	active bool // health checks on
	detect bool // outlier detection on

	// Atomic.
	members atomic.Pointer[[]Member]
	status  atomic.Pointer[map[string]Status]
	running atomic.Bool

	changed chan struct{} // members changed; buffer of one
	jobs    chan *job     // probes queued for the workers
	results chan result   // probes done, for the loop

	// Loop only.
	nodes    map[*balancer.Endpoint]*nodeState
	order    []*nodeState // the members' order
	workers  int
	lastEval time.Time
}

// New returns the checker of the route rc (defaults applied, validated),
// or nil when both its health checks and its outlier detection are
// disabled. It fails only when health_check.ca_file cannot be read.
func New(rc *config.RouteConfig, d Deps) (*Checker, error) {
	if rc.HealthCheck.Disable && rc.Outlier.Disable {
		return nil, nil
	}
	r, err := newRules(rc)
	if err != nil {
		return nil, err
	}
	c := &Checker{
		route: rc.Name, hc: rc.HealthCheck, oc: rc.Outlier, rules: r, m: d.Metrics, log: d.Log,
		active: !rc.HealthCheck.Disable, detect: !rc.Outlier.Disable,
		changed: make(chan struct{}, 1), jobs: make(chan *job, maxWorkers), results: make(chan result, maxWorkers),
		nodes: map[*balancer.Endpoint]*nodeState{},
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	shortest := rc.Outlier.Interval
	if c.active && (rc.HealthCheck.Interval < shortest || !c.detect) {
		shortest = rc.HealthCheck.Interval
	}
	c.tick = min(max(shortest/10, 5*time.Millisecond), 100*time.Millisecond)
	return c, nil
}

// SetMembers hands the checker the route's nodes after a table build; it
// never blocks. ms must not be modified afterwards.
func (c *Checker) SetMembers(ms []Member) {
	if c == nil {
		return
	}
	c.members.Store(&ms)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Status returns what the checker knows of node id; false when it has
// not seen the node (or is nil).
func (c *Checker) Status(id string) (Status, bool) {
	if c == nil {
		return Status{}, false
	}
	if m := c.status.Load(); m != nil {
		s, ok := (*m)[id]
		return s, ok
	}
	return Status{}, false
}

// job is one probe for a worker.
type job struct {
	st *nodeState
	t  *target
}

// Run probes and judges until ctx ends, then waits for its workers (at
// most one probe timeout) and returns. Call it once; a second concurrent
// call returns at once.
func (c *Checker) Run(ctx context.Context) {
	if c == nil || !c.running.CompareAndSwap(false, true) {
		return
	}
	defer c.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(c.tick)
	defer tick.Stop()
	c.lastEval = time.Now()
	c.guard("sync", func() { c.sync(time.Now()) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
			c.guard("sync", func() { c.sync(time.Now()) })
		case r := <-c.results:
			c.guard("result", func() { c.onResult(r, time.Now()) })
		case now := <-tick.C:
			c.guard("tick", func() {
				if c.active {
					c.dispatch(ctx, now, &wg)
				}
				if now.Sub(c.lastEval) >= c.oc.Interval {
					c.evaluate(now)
				}
			})
		}
	}
}

// guard runs one step of the loop; a panic is logged with its stack and
// the loop goes on.
func (c *Checker) guard(what string, f func()) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("gateway: health checker panicked", "route", c.route, "step", what, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// sync takes the latest members: new nodes get a state and a first probe
// at a random point of the interval; departed ones are forgotten.
func (c *Checker) sync(now time.Time) {
	p := c.members.Load()
	if p == nil {
		return
	}
	seen := make(map[*balancer.Endpoint]bool, len(*p))
	c.order = c.order[:0]
	for i := range *p {
		m := &(*p)[i]
		seen[m.Endpoint] = true
		st := c.nodes[m.Endpoint]
		if st != nil && st.engine != m.Engine {
			st.gone = true // its target changes: start afresh
			st = nil
		}
		if st == nil {
			st = c.newState(m, now)
			c.nodes[m.Endpoint] = st
		}
		wasReady := st.ready
		st.ready = m.Ready
		c.order = append(c.order, st)
		if m.Ready && !wasReady && st.ejected {
			// Its engine was reported not ready and is ready again (its
			// agent saw it recover). Not ready, it was not probed, so no
			// health check could lift the outlier ejection: the
			// engine's own word does, and it is judged afresh.
			st.ejected = false
			st.forgiveAt = now.Add(c.oc.BaseEjectionTime)
			c.recovered(st, now, "engine ready again; outlier ejection lifted")
		}
	}
	for ep, st := range c.nodes {
		if !seen[ep] {
			st.gone = true
			delete(c.nodes, ep)
		}
	}
	c.publish()
}

func (c *Checker) newState(m *Member, now time.Time) *nodeState {
	st := &nodeState{
		ep: m.Endpoint, node: m.Node, id: m.Endpoint.ID(), engine: m.Engine,
		attrs: nodeAttrs{route: c.route, node: m.Endpoint.ID()}, quietFrom: now,
	}
	t := c.rules.resolve(m)
	st.target = &t
	if t.none != "" {
		st.none = t.none
	}
	st.next = now.Add(time.Duration(rand.Float64() * float64(c.hc.Interval)))
	return st
}

// dispatch queues the probes that are due; a full queue waits for the
// next tick. Workers are started as the queue needs them, up to
// maxWorkers, and stop with ctx.
func (c *Checker) dispatch(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	for _, st := range c.order {
		if !st.ready || st.probing || now.Before(st.next) || st.target.none != "" {
			continue
		}
		select {
		case c.jobs <- &job{st: st, t: st.target}:
			st.probing = true
		default:
			return
		}
		if len(c.jobs) > 0 && c.workers < maxWorkers {
			c.workers++
			wg.Add(1)
			go c.work(ctx, wg)
		}
	}
}

// work is one probe worker: it runs queued probes until ctx ends.
func (c *Checker) work(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			r := c.run(ctx, j)
			select {
			case c.results <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// run runs one probe; a panic is logged and counts as a failed probe.
func (c *Checker) run(ctx context.Context, j *job) (r result) {
	r = result{st: j.st, sent: time.Now(), outcome: probeFailed, detail: "probe panicked"}
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("gateway: health probe panicked", "route", c.route, "node", j.st.id, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	r.outcome, r.detail = probe(ctx, j.t, c.hc.Timeout)
	r.took = time.Since(r.sent)
	return r
}

// next schedules a node's next probe one interval (jittered) after the
// one that just ended was sent.
func (c *Checker) nextProbe(sent, now time.Time) time.Time {
	j := 1 + jitter*(2*rand.Float64()-1)
	return later(sent.Add(time.Duration(float64(c.hc.Interval)*j)), now)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// onResult takes one probe's outcome.
func (c *Checker) onResult(r result, now time.Time) {
	st := r.st
	if st.gone {
		return
	}
	st.probing = false
	st.next = c.nextProbe(r.sent, now)
	st.lastProbe = r.detail
	switch r.outcome {
	case probeNone:
		c.m.probe(&st.attrs, resultNoEndpoint)
		if st.none == "" {
			c.log.Info("gateway: node has no health endpoint; outlier detection alone watches it",
				"route", c.route, "node", st.id, "check", st.target.url, "why", r.detail)
		}
		st.none = r.detail
		st.next = r.sent.Add(noneRecheck)
		st.failures, st.successes = 0, 0
		if st.unhealthy {
			st.unhealthy = false
			c.recovered(st, now, "it answers HTTP ("+r.detail+")")
		}
	case probeOK:
		c.m.probe(&st.attrs, resultHealthy)
		st.lastProbe = "ok"
		c.passed(st, now)
	case probeFailed:
		if st.none != "" {
			// Outlier detection alone watches this node; a recheck that
			// fails says nothing new.
			st.next = r.sent.Add(noneRecheck)
			return
		}
		if a := st.node.LastAnswer(); !a.IsZero() && !a.Before(r.sent.Add(-c.hc.Timeout)) {
			// The node answered a request of the route while its health
			// endpoint did not: busy, not hung.
			c.m.probe(&st.attrs, resultBusy)
			st.lastProbe = "busy: " + r.detail + ", but it answers requests"
			c.passed(st, now)
			return
		}
		c.m.probe(&st.attrs, resultUnhealthy)
		st.successes = 0
		st.failures++
		if !st.unhealthy && st.failures >= c.hc.UnhealthyAfter {
			st.unhealthy = true
			st.healthDetail = "health check failed " + strconv.Itoa(st.failures) + " times in a row: " + r.detail + " (GET " + st.target.url + ")"
			c.apply(st, now, reasonHealth, st.healthDetail)
			c.publish()
		}
	}
}

// passed counts a successful probe.
func (c *Checker) passed(st *nodeState, now time.Time) {
	if st.none != "" {
		c.log.Info("gateway: node has a health endpoint again", "route", c.route, "node", st.id, "check", st.target.url)
		st.none = ""
	}
	st.failures = 0
	st.successes++
	if st.unhealthy && st.successes >= c.hc.HealthyAfter {
		st.unhealthy = false
		reason := "health check passed"
		if st.ejected {
			// Its health check saw it recover: the outlier ejection ends
			// too (Envoy's successful_active_health_check_uneject_host).
			st.ejected = false
			reason += "; outlier ejection lifted"
		}
		c.recovered(st, now, reason)
	}
}

// recovered lets a node back once nothing holds it out.
func (c *Checker) recovered(st *nodeState, now time.Time, reason string) {
	// Judge it afresh: its silence from now, its answers from exchanges
	// sent from now (those stuck in the outage finish with it in their
	// time to first byte).
	st.quietFrom, st.silent = now, 0
	st.node.ForgetBefore(now)
	st.okW, st.failW, st.ttfbW, st.ttfbN, st.lastMean = 0, 0, 0, 0, 0
	if !st.unhealthy {
		st.healthDetail = ""
	}
	if !st.ejected {
		st.ejectReason, st.ejectDetail = "", ""
	}
	c.apply(st, now, "", "")
	if st.ep.Exclusions()&balancer.ExcludeHealth == 0 && st.wasOut {
		st.wasOut = false
		c.log.Info("gateway: node back", "route", c.route, "node", st.id, "reason", reason)
	}
	c.publish()
}

// apply makes the node's exclusion bit follow what was decided, but
// never takes out the last node of the route that could take requests.
// reason and detail say why the node goes out, for the log and metrics
// (empty: the reasons it already has).
func (c *Checker) apply(st *nodeState, now time.Time, reason, detail string) {
	if reason == "" {
		reason, detail = st.reason()
	}
	want := st.out()
	has := st.ep.Exclusions()&balancer.ExcludeHealth != 0
	switch {
	case want && !has:
		if !c.othersPickable(st) {
			if !st.held {
				st.held = true
				c.log.Warn("gateway: node failing but kept: it is the last node that can take requests",
					"route", c.route, "node", st.id, "reason", reason, "detail", detail)
			}
			return
		}
		st.held = false
		st.ep.Exclude(balancer.ExcludeHealth)
		st.wasOut = true
		c.m.excluded(&st.attrs, reason)
		args := []any{"route", c.route, "node", st.id, "reason", reason, "detail", detail}
		if st.ejected {
			args = append(args, "for", st.until.Sub(now).Round(time.Millisecond))
		}
		c.log.Warn("gateway: node excluded", args...)
	case !want:
		st.held = false
		if has {
			st.ep.Include(balancer.ExcludeHealth)
		}
	}
}

// othersPickable reports whether some other ready node of the route has
// no exclusion at all.
func (c *Checker) othersPickable(st *nodeState) bool {
	for _, o := range c.order {
		if o != st && o.ready && o.ep.Exclusions() == 0 {
			return true
		}
	}
	return false
}
