package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/switchyard-dev/switchyard/gateway/flow"
)

// Result classes counted per route, model and node.
const (
	class2xx = iota
	class3xx
	class4xx
	class5xx
	classCancelled
	classOther
	classCount
)

var classNames = [classCount]string{"2xx", "3xx", "4xx", "5xx", "cancelled", "other"}

// StatusClientClosed is the status recorded when the client went away
// before its answer was complete (nginx's 499).
const StatusClientClosed = 499

func classOf(status int) int {
	switch {
	case status == StatusClientClosed:
		return classCancelled
	case status >= 200 && status < 300:
		return class2xx
	case status >= 300 && status < 400:
		return class3xx
	case status >= 400 && status < 500:
		return class4xx
	case status >= 500 && status < 600:
		return class5xx
	}
	return classOther
}

// Model labels that are not a configured name.
const (
	ModelOther = "other" // a model the route's configuration does not name
	ModelNone  = ""      // the request named no model
)

// MaxTenantsPerModel bounds the tenant series of one route and model;
// further tenants count under TenantOther.
const MaxTenantsPerModel = 10000

// TenantOther is the tenant label of the tenants past MaxTenantsPerModel.
const TenantOther = "other"

// tenantLimit is MaxTenantsPerModel (lowered by tests).
var tenantLimit = MaxTenantsPerModel

// otelCardinalityLimit raises the OTel SDK's default limit of 2000 series
// per instrument (beyond it, series merge into otel_metric_overflow="true"),
// which a route of a few thousand nodes passes with its per-node gauges.
// The label sets are bounded by the configuration and discovery.
const otelCardinalityLimit = 1 << 17

// RouteStats are one route's live counters, kept by route name across
// reloads: retries and ejections, and the series of each model label
// (ModelStats). Must not be copied.
type RouteStats struct {
	name      string
	retries   atomic.Uint64
	ejections atomic.Uint64
	fallbacks [len(FallbackReasons)]atomic.Uint64 // by reason
	none      *ModelStats                         // model=""; immutable
	// routeAttrs is the route's attribute set, for gauges keyed by route;
	// classAttrs add each priority class, for the queue depth. Immutable.
	routeAttrs metric.MeasurementOption
	classAttrs [flow.NumClasses]metric.MeasurementOption

	queue [flow.NumClasses]queueStats // by priority class; atomic

	mu     sync.Mutex
	models map[string]*ModelStats // by model label, none included; guarded by mu
}

// queueStats are one priority class's queue series on one route.
type queueStats struct {
	wait     histogram // waits that ended in a slot
	outcomes [flow.NumOutcomes]atomic.Uint64
}

func newRouteStats(name string) *RouteStats {
	s := &RouteStats{name: name, models: map[string]*ModelStats{}}
	for c := range s.queue {
		s.queue[c].wait.init(&queueWaitBuckets)
	}
	s.none = s.modelLocked(ModelNone)
	s.routeAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name)))
	for c := range s.classAttrs {
		s.classAttrs[c] = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name), attribute.String("class", flow.Class(c).String())))
	}
	return s
}

// modelLocked returns the series of a model label, made on first use.
func (s *RouteStats) modelLocked(label string) *ModelStats {
	m, ok := s.models[label]
	if !ok {
		m = newModelStats(s.name, label)
		s.models[label] = m
	}
	return m
}

// Name is the route's name ("" for answers given before a route was
// chosen).
func (s *RouteStats) Name() string { return s.name }

// Models builds the model index of one route configuration: names are
// the models its match lists (Match.Models; "*" and "" are skipped).
// Build it once per configuration (not per request); the series behind it
// are shared with every other index of the route, so a reload keeps them.
func (s *RouteStats) Models(names []string) *ModelIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := &ModelIndex{byName: make(map[string]*ModelStats, len(names)), none: s.none, other: s.modelLocked(ModelOther)}
	for _, n := range names {
		if n != "" && n != "*" && n != ModelOther {
			x.byName[n] = s.modelLocked(n)
		}
	}
	return x
}

// Observe records one finished request under model="" (the request named
// no model, or the core does not look its model up). It does not
// allocate.
func (s *RouteStats) Observe(status int, d time.Duration) { s.none.Observe(status, d) }

// Retry counts one retry on another node.
func (s *RouteStats) Retry() { s.retries.Add(1) }

// FallbackReasons are the reason label of the fallback counter, indexed
// by route.FallbackReason.
var FallbackReasons = [...]string{"5xx", "429", "saturated"}

// Fallback counts one request this route sent to its fallback route, for
// reason (an index of FallbackReasons; others are ignored).
func (s *RouteStats) Fallback(reason int) {
	if reason >= 0 && reason < len(s.fallbacks) {
		s.fallbacks[reason].Add(1)
	}
}

// Fallbacks is the requests sent to the fallback route for reason.
func (s *RouteStats) Fallbacks(reason int) uint64 {
	if reason < 0 || reason >= len(s.fallbacks) {
		return 0
	}
	return s.fallbacks[reason].Load()
}

// Ejection counts one circuit breaker that opened.
func (s *RouteStats) Ejection() { s.ejections.Add(1) }

// ObserveQueue records one request that found the route full, as
// flow.Config.Observe reports it: its class, how it left the queue, and,
// when it got a slot, how long it waited. It does not allocate.
func (s *RouteStats) ObserveQueue(c flow.Class, waited time.Duration, o flow.Outcome) {
	if c >= flow.NumClasses || o >= flow.NumOutcomes {
		return
	}
	q := &s.queue[c]
	q.outcomes[o].Add(1)
	if o == flow.Dispatched {
		q.wait.observe(waited)
	}
}

// QueueOutcomes is the requests of class c that left the route's queue
// with outcome o.
func (s *RouteStats) QueueOutcomes(c flow.Class, o flow.Outcome) uint64 {
	if c >= flow.NumClasses || o >= flow.NumOutcomes {
		return 0
	}
	return s.queue[c].outcomes[o].Load()
}

// Retries is the retries counted.
func (s *RouteStats) Retries() uint64 { return s.retries.Load() }

// Ejections is the circuit breakers that opened.
func (s *RouteStats) Ejections() uint64 { return s.ejections.Load() }

// classTotal sums one result class over the route's models (or every
// class when c < 0). For tests and the admin API, not the hot path.
func (s *RouteStats) classTotal(c int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, m := range s.models {
		for i := range m.requests {
			if c < 0 || i == c {
				n += m.requests[i].Load()
			}
		}
	}
	return n
}

// Answered is the requests answered, every class and model.
func (s *RouteStats) Answered() uint64 { return s.classTotal(-1) }

// Failed is the requests answered 5xx (a stream the node broke counts as
// 502).
func (s *RouteStats) Failed() uint64 { return s.classTotal(class5xx) }

// Cancelled is the requests whose client went away (499).
func (s *RouteStats) Cancelled() uint64 { return s.classTotal(classCancelled) }

// Attrs returns the route's attribute set, built once, for gauges keyed by
// route.
func (s *RouteStats) Attrs() metric.MeasurementOption { return s.routeAttrs }

// ClassAttrs returns the attribute set of the route and a priority class,
// built once, for the queue depth gauge.
func (s *RouteStats) ClassAttrs(c flow.Class) metric.MeasurementOption {
	return s.classAttrs[min(c, flow.NumClasses-1)]
}

// ModelIndex maps the models of one route configuration to their series.
// It is immutable; Lookup takes no lock and does not allocate.
type ModelIndex struct {
	byName      map[string]*ModelStats
	none, other *ModelStats
}

// Lookup returns the series of a request's model: its own when the
// configuration names it, "other" when it does not, "" when model is
// empty (the request named none).
func (x *ModelIndex) Lookup(model []byte) *ModelStats {
	if len(model) == 0 {
		return x.none
	}
	if m, ok := x.byName[string(model)]; ok {
		return m
	}
	return x.other
}

// ModelStats are the series of one route and model label. Recording is
// atomic adds: no lock, no allocation (except a tenant's first tokens).
// Must not be copied.
type ModelStats struct {
	route, model string
	requests     [classCount]atomic.Uint64
	latency      histogram
	ttft         histogram
	itl          histogram
	tokens       [tokenTypes]atomic.Uint64

	tenants atomic.Pointer[map[string]*TenantTokens] // copy on write under tmu
	tmu     sync.Mutex
}

// Token types, the "type" label of the token counters.
const (
	tokensInput = iota
	tokensOutput
	tokenTypes
)

var tokenTypeNames = [tokenTypes]string{"input", "output"}

func newModelStats(route, model string) *ModelStats {
	m := &ModelStats{route: route, model: model}
	m.latency.init(&latencyBuckets)
	m.ttft.init(&ttftBuckets)
	m.itl.init(&itlBuckets)
	empty := map[string]*TenantTokens{}
	m.tenants.Store(&empty)
	return m
}

// Route is the route label.
func (m *ModelStats) Route() string { return m.route }

// Model is the model label: a configured name, ModelOther or ModelNone.
func (m *ModelStats) Model() string { return m.model }

// Observe records one finished request: its status and the time from
// receiving it to the end of its answer.
func (m *ModelStats) Observe(status int, d time.Duration) {
	m.requests[classOf(status)].Add(1)
	m.latency.observe(d)
}

// FirstToken records a stream's time to its first output event.
// (openai.TokenTimer.)
func (m *ModelStats) FirstToken(d time.Duration) { m.ttft.observe(d) }

// InterToken records the time between two output events of a stream.
// (openai.TokenTimer.)
func (m *ModelStats) InterToken(d time.Duration) { m.itl.observe(d) }

// Tokens counts the tokens of one answer, from the engine's usage
// (prompt_tokens, completion_tokens). Negative counts are ignored.
func (m *ModelStats) Tokens(input, output int64) {
	if input > 0 {
		m.tokens[tokensInput].Add(uint64(input))
	}
	if output > 0 {
		m.tokens[tokensOutput].Add(uint64(output))
	}
}

// Tenant returns the token counters of a tenant (its name from the
// API-key file) on this route and model. Look it up once per request; the
// first lookup of a tenant allocates its counters.
func (m *ModelStats) Tenant(name string) *TenantTokens {
	if t, ok := (*m.tenants.Load())[name]; ok {
		return t
	}
	m.tmu.Lock()
	defer m.tmu.Unlock()
	old := *m.tenants.Load()
	if t, ok := old[name]; ok {
		return t
	}
	if len(old) >= tenantLimit {
		name = TenantOther
		if t, ok := old[name]; ok {
			return t
		}
	}
	next := make(map[string]*TenantTokens, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	t := &TenantTokens{tenant: name}
	next[name] = t
	m.tenants.Store(&next)
	return t
}

// TenantTokens are one tenant's token counters on one route and model.
// Must not be copied.
type TenantTokens struct {
	tenant string
	tokens [tokenTypes]atomic.Uint64
}

// Add counts the tokens of one answer. Negative counts are ignored.
func (t *TenantTokens) Add(input, output int64) {
	if input > 0 {
		t.tokens[tokensInput].Add(uint64(input))
	}
	if output > 0 {
		t.tokens[tokensOutput].Add(uint64(output))
	}
}

// NodeStats are one node's counters on one route: requests by result
// class, the node's answer time (sum and count) and the time to first
// token (sum and count). Must not be copied.
type NodeStats struct {
	route, node string
	requests    [classCount]atomic.Uint64
	headNanos   atomic.Uint64 // time from sending to the answer head, summed
	headCount   atomic.Uint64
	ttftNanos   atomic.Uint64
	ttftCount   atomic.Uint64
	refs        int // holders (Metrics.Node); guarded by Metrics.mu
}

// Observe records one finished request on the node: its status and the
// time from sending it to the node's answer head (its upstream time).
func (n *NodeStats) Observe(status int, upstream time.Duration) {
	n.requests[classOf(status)].Add(1)
	n.headNanos.Add(uint64(max(upstream, 0)))
	n.headCount.Add(1)
}

// FirstToken records a stream's time to its first output event.
func (n *NodeStats) FirstToken(d time.Duration) {
	n.ttftNanos.Add(uint64(max(d, 0)))
	n.ttftCount.Add(1)
}

// TokenTimes sends a stream's token timing to its model's and its node's
// series: an openai.TokenTimer. Keep one in the request's state (no
// allocation) and set both fields per request; either may be nil.
type TokenTimes struct {
	Model *ModelStats
	Node  *NodeStats
}

// FirstToken records the time to the first output event.
func (t *TokenTimes) FirstToken(d time.Duration) {
	if t.Model != nil {
		t.Model.FirstToken(d)
	}
	if t.Node != nil {
		t.Node.FirstToken(d)
	}
}

// InterToken records the time between two output events.
func (t *TokenTimes) InterToken(d time.Duration) {
	if t.Model != nil {
		t.Model.InterToken(d)
	}
}

// Metrics owns the gateway's metrics: a Prometheus registry holding the
// route, model, tenant and node series (read from atomics at scrape time,
// so recording costs the hot path nothing but atomic adds), the OTel meter
// whose instruments other packages register (exported through the OTel
// Prometheus exporter into the same registry), build information and the
// Go runtime and process collectors.
type Metrics struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider

	mu     sync.Mutex
	routes map[string]*RouteStats // by route name; guarded by mu
	nodes  map[nodeKey]*NodeStats // held by routes (Node/ReleaseNode); guarded by mu
}

type nodeKey struct{ route, node string }

// Option configures NewMetrics.
type Option func(*options)

type options struct {
	build BuildInfo
}

// BuildInfo labels switchyard_build_info.
type BuildInfo struct {
	Version  string // "v1.2.3", a pseudo-version, or "dev"
	Revision string // the commit, or "unknown"
}

// WithBuildInfo sets the version and revision of switchyard_build_info
// (the binary's link-time values); by default they come from the build
// information Go stamps into the binary (ReadBuildInfo).
func WithBuildInfo(b BuildInfo) Option { return func(o *options) { o.build = b } }

// NewMetrics builds the registry: the gateway's own series (see the
// package doc), switchyard_build_info, the Go runtime and process
// collectors, and the OTel meter for instruments registered elsewhere
// (Meter).
func NewMetrics(opts ...Option) (*Metrics, error) {
	o := options{build: ReadBuildInfo()}
	for _, opt := range opts {
		opt(&o)
	}
	t := &Metrics{reg: prometheus.NewRegistry(), routes: map[string]*RouteStats{}, nodes: map[nodeKey]*NodeStats{}}
	exp, err := otelprom.New(otelprom.WithRegisterer(t.reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics exporter: %w", err)
	}
	t.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithCardinalityLimit(otelCardinalityLimit))
	for _, c := range []prometheus.Collector{
		collector{t},
		buildInfoCollector(o.build),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := t.reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: metrics: %w", err)
		}
	}
	return t, nil
}

// Meter is the gateway's meter, for instruments registered elsewhere.
func (t *Metrics) Meter() metric.Meter {
	return t.provider.Meter("github.com/switchyard-dev/switchyard/gateway")
}

// Route returns the stats of a route name, shared across reloads. The
// name "" holds answers given before a route was chosen.
func (t *Metrics) Route(name string) *RouteStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.routes[name]
	if !ok {
		s = newRouteStats(name)
		t.routes[name] = s
	}
	return s
}

// Node returns the stats of a node on a route and holds them: each call
// must be matched by one ReleaseNode when the route stops using the node
// (it leaves the route's node list, or the route is retired). Holders of
// the same route and node share one NodeStats, so a reload keeps its
// counts; when the last holder releases it its series leave the scrape.
func (t *Metrics) Node(route, node string) *NodeStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := nodeKey{route, node}
	n, ok := t.nodes[k]
	if !ok {
		n = &NodeStats{route: route, node: node}
		t.nodes[k] = n
	}
	n.refs++
	return n
}

// ReleaseNode gives back a NodeStats from Node.
func (t *Metrics) ReleaseNode(n *NodeStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := nodeKey{n.route, n.node}
	if t.nodes[k] != n || n.refs <= 0 {
		panic("BUG: telemetry: ReleaseNode of a NodeStats not held")
	}
	if n.refs--; n.refs == 0 {
		delete(t.nodes, k)
	}
}

// Handler serves the Prometheus exposition.
func (t *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

// Gatherer is the registry, for tests and embedders that scrape in
// process.
func (t *Metrics) Gatherer() prometheus.Gatherer { return t.reg }

// Shutdown stops the meter provider.
func (t *Metrics) Shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}
