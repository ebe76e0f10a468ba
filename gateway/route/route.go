package route

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/textproto"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/health"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Stream modes of a route.
const (
	streamAuto uint8 = iota
	streamAlways
	streamNever
)

// Route is one configured route with its live table. The table is built
// by the route's owner goroutine (Run) from the node lists its source
// delivers (Offer) and read lock-free by requests.
type Route struct {
	// Immutable after New.
	cfg      config.RouteConfig
	lim      *config.Limits
	log      *slog.Logger // nil: no log
	stats    *telemetry.RouteStats
	modelIdx *telemetry.ModelIndex // the series of the route's models
	primary  []byte                // the first of match.models; nil for none or "*"
	upModel  string                // UpstreamModel
	nodeCfg  upstream.Config
	models   map[string]struct{}
	adapters adapterNames // match.adapters
	headers  []headerMatch
	allow    allowlist
	stream   uint8
	hashed   bool // policy uses the request key
	hashKey  []byte
	attempts int
	static   bool // nodes from the config, not a discovery source
	// Set by the Set that owns the route (issue 6 extras).
	splitter *split.Splitter
	variants []*Route // by split variant index
	mirror   *shadow.Mirror
	fallback *Route // Fallback's target; nil for none
	fbOn     uint8  // fallbackOn bits
	// retry budget in milli-tokens
	retryDeposit int64
	retryCap     int64
	health       *health.Checker // nil when health checks and outlier detection are off
	aff          *balancer.Affinity
	queue        *flow.Queue
	sessionKey   []byte // header of session affinity, canonical; nil for none
	breakerPath  string // the half-open breaker's trial path

	// Atomic.
	table     atomic.Pointer[balancer.Table]
	meta      atomic.Pointer[map[string]NodeMeta] // by node id, for the admin API and metrics
	reported  atomic.Pointer[map[string]struct{}] // adapters some node reports loaded; nil for none
	list      atomic.Pointer[discovery.OnlineList]
	retryBank atomic.Int64

	// Guarded by the owning Gateway's lock.
	stop context.CancelFunc // stops the owner goroutine; nil until started

	// Owner only.
	reg     *balancer.Registry
	builder *balancer.Builder
	nodes   []balancer.Node
	trigger chan struct{}
}

// New builds a route from its config (defaults applied and validated).
// Static routes get their list at once; others wait for Offer. hm may be
// nil (no health metrics).
func New(rc config.RouteConfig, lim *config.Limits, metrics *telemetry.Metrics, hm *health.Metrics, log *slog.Logger) (*Route, error) {
	bc, err := balancer.NamedConfig(rc.Policy)
	if err != nil {
		return nil, err
	}
	stats := metrics.Route(rc.Name)
	r := &Route{cfg: rc, lim: lim, log: log, stats: stats, trigger: make(chan struct{}, 1), static: len(rc.Nodes) > 0}
	r.modelIdx = stats.Models(rc.Match.Models)
	if len(rc.Match.Models) > 0 && rc.Match.Models[0] != "*" {
		r.primary = []byte(rc.Match.Models[0])
	}
	r.upModel = rc.UpstreamModel
	r.hashed = bc.Policy == balancer.ConsistentHash
	r.hashKey = []byte(textproto.CanonicalMIMEHeaderKey(rc.HashHeader))
	r.nodeCfg = upstream.Config{
		Route: rc.Name, Timeouts: rc.Timeouts, Breaker: rc.Breaker,
		MaxConns: lim.MaxPerNode + 16, MaxResponseBytes: lim.MaxResponseBytes,
		OnEject: stats.Ejection, Log: log, Metrics: metrics,
	}
	if r.nodeCfg.TLS, err = upstream.NewTLS(rc.TLS, log); err != nil {
		return nil, err
	}
	r.reg = balancer.NewRegistry(func(id string, addr balancer.Address) any {
		return upstream.New(id, addr, &r.nodeCfg)
	}, func(e *balancer.Endpoint) {
		e.Value().(*upstream.Node).Close()
	})
	if r.builder, err = balancer.NewBuilder(bc, r.reg); err != nil {
		return nil, err
	}
	r.allow = newAllowlist(rc.AllowPaths, rc.Match.RayPrefix, rc.Match.PathPrefix)
	r.models = make(map[string]struct{}, len(rc.Match.Models))
	for _, m := range rc.Match.Models {
		r.models[m] = struct{}{}
	}
	r.adapters = newAdapterNames(rc.Match.Adapters)
	for k, v := range rc.Match.Headers {
		r.headers = append(r.headers, headerMatch{[]byte(textproto.CanonicalMIMEHeaderKey(k)), v})
	}
	switch rc.Stream {
	case "always":
		r.stream = streamAlways
	case "never":
		r.stream = streamNever
	}
	r.attempts = max(rc.Retries.Attempts, 0)
	r.retryDeposit = int64(rc.Retries.BudgetPercent * 10) // per request, in milli-retries
	r.retryCap = int64(rc.Retries.MinRetries)*1000 + 1000
	r.retryBank.Store(r.retryCap)
	if !rc.Affinity.Off && !r.hashed {
		if r.aff, err = balancer.NewAffinity(rc.Affinity.AffinityConfig); err != nil {
			return nil, err
		}
		if h := rc.Affinity.SessionHeader; h != "" {
			r.sessionKey = []byte(textproto.CanonicalMIMEHeaderKey(h))
		}
	}
	qc := rc.Queue.Config
	qc.Observe = stats.ObserveQueue
	if r.queue, err = flow.New(qc); err != nil {
		return nil, err
	}
	if r.health, err = health.New(&r.cfg, health.Deps{Metrics: hm, Log: log}); err != nil {
		return nil, err
	}
	r.breakerPath = health.BreakerPath(&rc)
	if r.static {
		l := staticList(&rc)
		r.list.Store(&l)
	}
	r.rebuild(time.Now())
	return r, nil
}

func staticList(rc *config.RouteConfig) discovery.OnlineList {
	l := discovery.OnlineList{App: rc.App, Version: 1}
	for _, n := range rc.Nodes {
		l.Nodes = append(l.Nodes, &discovery.Node{
			ID: n.ID, App: rc.App, Capacity: n.Weight, State: discovery.StateReady,
			Addresses: map[string]string{"http": n.HTTP, "grpc": n.GRPC},
		})
	}
	return l
}

// Models are the series of the route's models (ModelIndex.Lookup with the
// request's model).
func (r *Route) Models() *telemetry.ModelIndex { return r.modelIdx }

// PrimaryModel is the first model the route matches (nil for none or
// "*"): the model a split variant or fallback target stands for.
func (r *Route) PrimaryModel() []byte { return r.primary }

// UpstreamModel is the model name the nodes serve ("" when the request's
// own goes on).
func (r *Route) UpstreamModel() string { return r.upModel }

// InjectUsage reports whether streamed OpenAI requests ask their engine
// for the usage event (stream_usage: inject).
func (r *Route) InjectUsage() bool { return r.cfg.StreamUsage != "pass" }

// StreamKeepAlive is the silence after which a streamed OpenAI answer
// gets an SSE comment (0: never).
func (r *Route) StreamKeepAlive() time.Duration { return r.cfg.StreamKeepAlive }

// Fallback is the route that serves what this one cannot (nil: none), and
// whether reason sends a request there.
func (r *Route) Fallback(reason FallbackReason) *Route {
	if r.fallback == nil || r.fbOn&(1<<reason) == 0 {
		return nil
	}
	return r.fallback
}

// HasFallback reports whether the route has a fallback.
func (r *Route) HasFallback() bool { return r.fallback != nil }

// FallbackReason is why a request may go to the route's fallback.
type FallbackReason uint8

// Fallback reasons (config.FallbackConfig.On).
const (
	Fallback5xx FallbackReason = iota
	Fallback429
	FallbackSaturated
)

// String is the reason as the fallback counter's label and the
// X-Switchyard-Fallback answer header say it: "5xx", "429", "saturated".
func (r FallbackReason) String() string {
	if int(r) < len(telemetry.FallbackReasons) {
		return telemetry.FallbackReasons[r]
	}
	return "unknown"
}

// Config is the route's config (not to be modified).
func (r *Route) Config() *config.RouteConfig { return &r.cfg }

// Name is the route's name.
func (r *Route) Name() string { return r.cfg.Name }

// Static reports whether the route's nodes come from its config.
func (r *Route) Static() bool { return r.static }

// Stats are the route's counters.
func (r *Route) Stats() *telemetry.RouteStats { return r.stats }

// Table is the route's current table, or nil before the first list.
func (r *Route) Table() *balancer.Table { return r.table.Load() }

// Meta is the per-node data published with the current table.
func (r *Route) Meta() map[string]NodeMeta {
	if m := r.meta.Load(); m != nil {
		return *m
	}
	return nil
}

// InFlight is the requests in flight on the route's nodes.
func (r *Route) InFlight() int64 { return r.reg.InFlight() }

// Attempts is the most retries per request.
func (r *Route) Attempts() int { return r.attempts }

// MaxPerNode is the per-node concurrency limit.
func (r *Route) MaxPerNode() int64 { return int64(r.lim.MaxPerNode) }

// HashKey returns the header the ring-hash policy hashes, nil for other
// policies.
func (r *Route) HashKey() []byte {
	if !r.hashed {
		return nil
	}
	return r.hashKey
}

// Splitter is the route's A/B split, nil without one; Variant(i) is the
// route serving variant i.
func (r *Route) Splitter() *split.Splitter { return r.splitter }

// Variant is the route that serves split variant i.
func (r *Route) Variant(i int) *Route { return r.variants[i] }

// Mirror is the route's shadow mirror, nil without one.
func (r *Route) Mirror() *shadow.Mirror { return r.mirror }

// TakeRetry spends one retry from the budget. Every request deposits
// BudgetPercent/100 of a retry, the bank holds at most MinRetries+1.
func (r *Route) TakeRetry() bool {
	for {
		v := r.retryBank.Load()
		if v < 1000 {
			return false
		}
		if r.retryBank.CompareAndSwap(v, v-1000) {
			return true
		}
	}
}

// DepositRetry adds one request's share to the retry budget.
func (r *Route) DepositRetry() {
	if r.retryBank.Load() < r.retryCap {
		r.retryBank.Add(r.retryDeposit)
	}
}

// Allows reports whether a (normalised) path may reach the route's nodes
// (RouteConfig.AllowPaths).
func (r *Route) Allows(path []byte) bool { return r.allow.allows(path) }

// WantsStream decides whether the response is relayed as it arrives.
func (r *Route) WantsStream(bodyStream bool, accept, path []byte) bool {
	switch r.stream {
	case streamAlways:
		return true
	case streamNever:
		return false
	}
	return bodyStream || bytes.Contains(accept, []byte("text/event-stream")) || bytes.HasSuffix(path, []byte("generate_stream"))
}

// Offer hands the route a new node list from its source; it never
// blocks. The owner rebuilds the table from it. The list must not be
// modified afterwards.
func (r *Route) Offer(l discovery.OnlineList) {
	r.list.Store(&l)
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// toNode turns a discovery node into a balancer node. The gateway is the
// only place that does this.
func toNode(n *discovery.Node) (balancer.Node, bool) {
	h := n.Addresses["http"]
	g := n.Addresses["grpc"]
	if h == "" {
		h = g
	}
	if h == "" {
		for _, a := range n.Addresses {
			h = a
			break
		}
	}
	if h == "" {
		return balancer.Node{}, false
	}
	if g == "" {
		g = h
	}
	st := balancer.Offline
	switch n.State {
	case discovery.StateReady, discovery.StateSuspect:
		st = balancer.Ready
	case discovery.StateDraining:
		st = balancer.Draining
	}
	if st == balancer.Ready {
		// Kept, not picked, until the engine is ready again; a busy engine
		// is ready (its queue counts through Waiting).
		switch n.Load.Readiness {
		case discovery.ReadinessNotReady:
			st = balancer.NotReady
		case discovery.ReadinessAsleep:
			st = balancer.Asleep
		}
	}
	l := &n.Load
	nan := math.NaN() // unknown: the balancer tells it from a reported 0
	return balancer.Node{
		ID: n.ID, Addr: balancer.Address{HTTP: h, GRPC: g}, Capacity: n.Capacity, State: st,
		Load: balancer.Load{
			Utilisation: l.Utilisation.Or(nan), Concurrency: l.Concurrency.Or(nan),
			Running: l.Running.Or(nan), Waiting: l.Waiting.Or(nan), KVCache: l.KVCacheUsage.Or(nan),
			SampledAt: l.SampledAt,
		},
	}, true
}

// rebuild builds and publishes a new table from the latest list. Before
// the first list the table is empty (requests get 503); a source never
// takes a list back, so the last one stays until a new one comes. The
// health checker gets the table's nodes.
func (r *Route) rebuild(now time.Time) {
	var list discovery.OnlineList
	if l := r.list.Load(); l != nil {
		list = *l
	}
	r.nodes = r.nodes[:0]
	old := r.meta.Load()
	meta := make(map[string]NodeMeta, len(list.Nodes))
	for i := range list.Nodes {
		n, ok := toNode(list.Nodes[i])
		if !ok {
			continue
		}
		r.nodes = append(r.nodes, n)
		m := NodeMeta{LastHeard: list.Nodes[i].LastHeard, Load: list.Nodes[i].Load, engine: list.Nodes[i].Engine, noHTTP: list.Nodes[i].Addresses["http"] == "" && !r.static}
		if old != nil {
			m.Attrs = (*old)[n.ID].Attrs
		}
		if m.Attrs == nil {
			m.Attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", r.cfg.Name), attribute.String("node", n.ID)))
		}
		meta[n.ID] = m
	}
	t := r.builder.Build(r.nodes, now)
	var members []health.Member
	if r.health != nil {
		members = make([]health.Member, t.Len())
	}
	for i := 0; i < t.Len(); i++ {
		e := t.Endpoint(i)
		n := e.Value().(*upstream.Node)
		n.Bind(e)
		if members != nil {
			m := meta[e.ID()]
			members[i] = health.Member{Endpoint: e, Node: n, Ready: i < t.Ready(), Engine: m.engine, NoHTTP: m.noHTTP}
		}
	}
	if r.aff != nil {
		// Before the table is published: the engines' reports (prefix-cache
		// counters, LoRA adapters) as the node list carried them.
		var loaded map[string]struct{}
		r.aff.Update(t, now, func(id string) (balancer.NodeReport, bool) {
			m, ok := meta[id]
			if !ok {
				return balancer.NodeReport{}, false
			}
			rep, ok := nodeReport(&m.Load)
			for _, a := range rep.Adapters {
				if loaded == nil {
					loaded = make(map[string]struct{})
				}
				loaded[a] = struct{}{}
			}
			return rep, ok
		})
		if loaded == nil {
			r.reported.Store(nil)
		} else {
			r.reported.Store(&loaded)
		}
	}
	r.setQueueLimit(t)
	prev := r.table.Swap(t)
	r.meta.Store(&meta)
	r.logReadiness(prev, t)
	r.health.SetMembers(members)
}

// setQueueLimit gives the route's queue a slot per request a node may
// take: limits.max_per_node for each ready node that nothing excludes
// (breaker, health, drain, busy, admin). The owner calls it at each
// rebuild and probe tick, so exclusions count within a second.
func (r *Route) setQueueLimit(t *balancer.Table) {
	eligible := 0
	for i := 0; i < t.Ready(); i++ { // the ready nodes come first
		if t.Endpoint(i).Exclusions() == 0 {
			eligible++
		}
	}
	r.queue.SetLimit(eligible * r.lim.MaxPerNode)
}

// Affinity is the route's affinity (nil when off).
func (r *Route) Affinity() *balancer.Affinity { return r.aff }

// Queue is the route's flow control.
func (r *Route) Queue() *flow.Queue { return r.queue }

// SessionHeader is the header of session affinity (nil for none);
// SessionFromUser says the OpenAI "user" field keys sessions.
func (r *Route) SessionHeader() []byte { return r.sessionKey }

// SessionFromUser reports whether the OpenAI "user" field keys sessions.
func (r *Route) SessionFromUser() bool { return r.cfg.Affinity.SessionFromUser }

// NodeMeta is per-node data published with each table: the last heartbeat
// the source reported, the engine load it carried (unknown for static
// nodes) and the node's metric attributes, built once.
type NodeMeta struct {
	LastHeard time.Time
	Load      discovery.Load
	Attrs     metric.MeasurementOption
	engine    string // the engine the node reports
	noHTTP    bool   // the node has no HTTP address
}

// Engine is the engine the node reports ("" when unknown).
func (m NodeMeta) Engine() string { return m.engine }

// CloseIdle drops the idle pooled connections of every node of a retired
// route; requests still running on them finish first.
func (r *Route) CloseIdle() {
	if t := r.table.Load(); t != nil {
		for i := 0; i < t.Len(); i++ {
			t.Endpoint(i).Value().(*upstream.Node).Close()
		}
	}
}

// Start runs the route's owner goroutine under ctx unless it runs
// already; Stop ends it. Called with the owning Gateway's lock held.
func (r *Route) Start(ctx context.Context, weightPeriod time.Duration, log *slog.Logger) {
	if r.stop != nil {
		return
	}
	ctx, r.stop = context.WithCancel(ctx)
	go r.run(ctx, weightPeriod, log)
	if r.health != nil {
		go r.health.Run(ctx)
	}
}

// Health is the route's health checker (nil when its health checks and
// outlier detection are both off); Status reads it.
func (r *Route) Health() *health.Checker { return r.health }

// Stop ends the owner goroutine (it returns shortly after). Called with
// the owning Gateway's lock held.
func (r *Route) Stop() {
	if r.stop != nil {
		r.stop()
	}
}

// run is the route's owner goroutine: it rebuilds the table on new lists
// and on the weight ticker, runs the breaker prober and closes stale
// idle connections, until ctx ends.
func (r *Route) run(ctx context.Context, weightPeriod time.Duration, log *slog.Logger) {
	weights := time.NewTicker(weightPeriod)
	defer weights.Stop()
	probeEvery := min(r.cfg.Breaker.OpenFor/2, time.Second)
	probes := time.NewTicker(max(probeEvery, 5*time.Millisecond))
	defer probes.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
			r.rebuild(time.Now())
		case now := <-weights.C:
			r.rebuild(now)
			r.closeStale(now)
		case now := <-probes.C:
			if r.aff != nil {
				r.aff.Tick(now)
			}
			r.probeAll(ctx, log)
		}
	}
}

// logReadiness says when a route fed by a source gets its first ready
// node, from when requests to it are picked a node (it is logged once the
// table is published), and when it has none left.
func (r *Route) logReadiness(prev, t *balancer.Table) {
	if r.static || r.log == nil {
		return
	}
	was := prev != nil && prev.Ready() > 0
	switch now := t.Ready() > 0; {
	case now && !was:
		r.log.Info("gateway: route has ready nodes", "route", r.cfg.Name, "ready", t.Ready())
	case was && !now:
		r.log.Warn("gateway: route has no ready node left", "route", r.cfg.Name, "nodes", t.Len())
	}
}

func (r *Route) closeStale(now time.Time) {
	t := r.table.Load()
	for i := 0; t != nil && i < t.Len(); i++ {
		t.Endpoint(i).Value().(*upstream.Node).CloseStale(now)
	}
}

// probeAll gives half-open breakers their trial, lets drained nodes back
// in after the breaker's open period and busy ones after their
// Retry-After. Probes run in parallel, each
// bounded by ProbeTimeout, and a panicking probe is logged, not fatal.
func (r *Route) probeAll(ctx context.Context, log *slog.Logger) {
	t := r.table.Load()
	if t == nil {
		return
	}
	now := time.Now()
	defer r.setQueueLimit(t)
	done := make(chan struct{}, t.Len())
	started := 0
	for i := 0; i < t.Len(); i++ {
		e := t.Endpoint(i)
		x := e.Exclusions()
		n := e.Value().(*upstream.Node)
		if x&balancer.ExcludeDraining != 0 && n.DrainedFor(now) >= r.cfg.Breaker.OpenFor {
			e.Include(balancer.ExcludeDraining)
		}
		if x&balancer.ExcludeOverload != 0 && n.BusyOver(now) {
			e.Include(balancer.ExcludeOverload)
		}
		if x&balancer.ExcludeBreaker == 0 {
			continue
		}
		started++
		go func() {
			defer func() {
				if p := recover(); p != nil {
					log.Error("gateway: breaker probe panicked", "route", r.cfg.Name, "node", n.ID(), "panic", p, "stack", string(debug.Stack()))
				}
				done <- struct{}{}
			}()
			n.Probe(ctx, r.breakerPath, r.cfg.Breaker.ProbeTimeout)
		}()
	}
	for ; started > 0; started-- {
		<-done
	}
}

// Header reads a request header for matching.
type Header interface {
	Header(name []byte) []byte
}

// matches reports whether a request matches the route's conditions other
// than the model index.
func (r *Route) matches(host, path []byte, header Header, model []byte, hasModel bool) bool {
	m := &r.cfg.Match
	if m.Host != "" && string(stripPort(host)) != m.Host {
		return false
	}
	if m.PathPrefix != "" && (len(path) < len(m.PathPrefix) || string(path[:len(m.PathPrefix)]) != m.PathPrefix) {
		return false
	}
	if m.RayPrefix != "" && !HasRayPrefix(path, m.RayPrefix) {
		return false
	}
	for _, h := range r.headers {
		if string(header.Header(h.name)) != h.value {
			return false
		}
	}
	if len(r.models) > 0 || r.adapters.any() {
		if !hasModel {
			return false
		}
		if _, ok := r.models[string(model)]; !ok && !r.adapters.has(model) {
			return false
		}
	}
	return true
}

// headerMatch is one header condition.
type headerMatch struct {
	name  []byte
	value string
}

func stripPort(host []byte) []byte {
	for i := len(host) - 1; i >= 0; i-- {
		switch host[i] {
		case ':':
			return host[:i]
		case ']':
			return host
		}
	}
	return host
}
