package gateway

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

// Lister yields an application's current online list. List must not block
// and the list it returns must not be modified; ok false means the app is
// not known (yet). *discovery.Client satisfies it, as does the static list
// built from a route's nodes.
type Lister interface {
	List(app string) (discovery.OnlineList, bool)
}

var _ Lister = (*discovery.Client)(nil)

// staticLister serves the online lists of routes with static nodes.
type staticLister map[string]discovery.OnlineList

func (s staticLister) List(app string) (discovery.OnlineList, bool) {
	l, ok := s[app]
	return l, ok
}

func staticList(rc *RouteConfig) discovery.OnlineList {
	l := discovery.OnlineList{App: rc.App, Version: 1}
	for _, n := range rc.Nodes {
		l.Nodes = append(l.Nodes, &discovery.Node{
			ID: n.ID, App: rc.App, Capacity: n.Weight, State: discovery.StateReady,
			Addresses: map[string]string{"http": n.HTTP, "grpc": n.GRPC},
		})
	}
	return l
}

// Stream modes of a route.
const (
	streamAuto uint8 = iota
	streamAlways
	streamNever
)

// route is one configured route with its live table. The table is built
// by the route's owner goroutine (run) and read lock-free by requests.
type route struct {
	// Immutable after newRoute.
	cfg      RouteConfig
	lim      *Limits
	src      Lister
	stats    *routeStats
	models   map[string]struct{}
	headers  [][2]string
	stream   uint8
	hashed   bool // policy uses the request key
	attempts int
	// issue 6, set by wireExtras
	splitter *split.Splitter
	variants []*route // by split variant index
	mirror   *shadow.Mirror
	// retry budget in milli-tokens
	retryDeposit int64
	retryCap     int64

	// Atomic.
	table     atomic.Pointer[balancer.Table]
	meta      atomic.Pointer[map[string]nodeMeta] // by node id, for /admin/nodes and metrics
	retryBank atomic.Int64

	// Guarded by Gateway.mu.
	stop context.CancelFunc // stops the owner goroutine; nil until started

	// Owner only.
	reg     *balancer.Registry // owner only, except InFlight
	builder *balancer.Builder
	nodes   []balancer.Node
	trigger chan struct{}
}

func newRoute(rc RouteConfig, lim *Limits, src Lister, stats *routeStats, log *slog.Logger) (*route, error) {
	bc, err := balancer.NamedConfig(rc.Policy)
	if err != nil {
		return nil, err
	}
	r := &route{cfg: rc, lim: lim, src: src, stats: stats, trigger: make(chan struct{}, 1)}
	r.hashed = bc.Policy == balancer.ConsistentHash
	reg := balancer.NewRegistry(func(id, addr string) any {
		return newUpstream(id, addr, &r.cfg, r.lim, r.stats, log)
	}, func(e *balancer.Endpoint) {
		e.Value().(*upstream).close()
	})
	r.reg = reg
	if r.builder, err = balancer.NewBuilder(bc, reg); err != nil {
		return nil, err
	}
	r.models = make(map[string]struct{}, len(rc.Match.Models))
	for _, m := range rc.Match.Models {
		r.models[m] = struct{}{}
	}
	for k, v := range rc.Match.Headers {
		r.headers = append(r.headers, [2]string{k, v})
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
	r.rebuild(time.Now())
	return r, nil
}

// takeRetry spends one retry from the budget. Every request deposits
// BudgetPercent/100 of a retry, the bank holds at most MinRetries+1.
func (r *route) takeRetry() bool {
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

func (r *route) depositRetry() {
	if r.retryBank.Load() < r.retryCap {
		r.retryBank.Add(r.retryDeposit)
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
	st := balancer.Offline
	switch n.State {
	case discovery.StateReady, discovery.StateSuspect:
		st = balancer.Ready
	case discovery.StateDraining:
		st = balancer.Draining
	}
	return balancer.Node{
		ID: n.ID, Addr: nodeAddr(h, g), Capacity: n.Capacity, State: st,
		// Unknown reads as 0 here as it did before discovery.Load became
		// unknown-aware; the signals work maps the rest (issue 13).
		Load: balancer.Load{Utilisation: n.Load.Utilisation.Or(0), Concurrency: n.Load.Concurrency.Or(0), SampledAt: n.Load.SampledAt},
	}, true
}

// rebuild builds and publishes a new table from the source's list. A
// missing list keeps the last table (discovery never empties a view).
func (r *route) rebuild(now time.Time) {
	list, ok := r.src.List(r.cfg.App)
	if !ok && r.table.Load() != nil {
		return
	}
	r.nodes = r.nodes[:0]
	old := r.meta.Load()
	meta := make(map[string]nodeMeta, len(list.Nodes))
	for i := range list.Nodes {
		if n, ok := toNode(list.Nodes[i]); ok {
			r.nodes = append(r.nodes, n)
			m := nodeMeta{lastHeard: list.Nodes[i].LastHeard}
			if old != nil {
				m.attrs = (*old)[n.ID].attrs
			}
			if m.attrs == nil {
				m.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", r.cfg.Name), attribute.String("node", n.ID)))
			}
			meta[n.ID] = m
		}
	}
	t := r.builder.Build(r.nodes, now)
	for i := 0; i < t.Len(); i++ {
		e := t.Endpoint(i)
		e.Value().(*upstream).bind(e)
	}
	r.table.Store(t)
	r.meta.Store(&meta)
}

// nodeMeta is per-node data published with each table: the last heartbeat
// Resource reported and the node's metric attributes, built once.
type nodeMeta struct {
	lastHeard time.Time
	attrs     metric.MeasurementOption
}

// closeIdle drops the idle pooled connections of every node of a retired
// route; requests still running on them finish first.
func (r *route) closeIdle() {
	if t := r.table.Load(); t != nil {
		for i := 0; i < t.Len(); i++ {
			t.Endpoint(i).Value().(*upstream).close()
		}
	}
}

// poke asks the owner for a rebuild; it never blocks.
func (r *route) poke() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// run is the route's owner goroutine: it rebuilds the table on pokes and
// on the weight ticker, and runs the breaker prober, until ctx ends.
func (r *route) run(ctx context.Context, weightPeriod time.Duration, log *slog.Logger) {
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
		case <-probes.C:
			r.probeAll(ctx, log)
		}
	}
}

// probeAll gives half-open breakers their trial and lets drained nodes
// back in after the breaker's open period. Probes run in parallel, each
// bounded by ProbeTimeout, and a panicking probe is logged, not fatal.
func (r *route) probeAll(ctx context.Context, log *slog.Logger) {
	t := r.table.Load()
	if t == nil {
		return
	}
	done := make(chan struct{}, t.Len())
	started := 0
	for i := 0; i < t.Len(); i++ {
		e := t.Endpoint(i)
		x := e.Exclusions()
		u := e.Value().(*upstream)
		if x&balancer.ExcludeDraining != 0 && time.Since(time.Unix(0, u.drainedAt.Load())) >= r.cfg.Breaker.OpenFor {
			e.Include(balancer.ExcludeDraining)
		}
		if x&balancer.ExcludeBreaker == 0 {
			continue
		}
		started++
		go func() {
			defer func() {
				if p := recover(); p != nil {
					log.Error("gateway: breaker probe panicked", "route", r.cfg.Name, "node", u.id, "panic", p, "stack", string(debug.Stack()))
				}
				done <- struct{}{}
			}()
			u.probe(ctx, r.cfg.HealthPath, r.cfg.Breaker.ProbeTimeout)
		}()
	}
	for ; started > 0; started-- {
		<-done
	}
}

// matches reports whether a request matches the route's conditions other
// than the model index.
// headerPeeker reads a request header; *fasthttp.RequestHeader is one.
type headerPeeker interface {
	Peek(key string) []byte
}

func (r *route) matches(host, path []byte, header headerPeeker, model []byte, hasModel bool) bool {
	m := &r.cfg.Match
	if m.Host != "" && string(stripPort(host)) != m.Host {
		return false
	}
	if m.PathPrefix != "" && (len(path) < len(m.PathPrefix) || string(path[:len(m.PathPrefix)]) != m.PathPrefix) {
		return false
	}
	if m.RayPrefix != "" && !hasRayPrefix(path, m.RayPrefix) {
		return false
	}
	for _, h := range r.headers {
		if string(header.Peek(h[0])) != h[1] {
			return false
		}
	}
	if len(r.models) > 0 {
		if !hasModel {
			return false
		}
		if _, ok := r.models[string(model)]; !ok {
			return false
		}
	}
	return true
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
