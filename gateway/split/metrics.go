package split

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Option is a rare knob for New.
type Option func(*options)

type options struct {
	meter    metric.Meter
	registry *Registry
	route    string
}

// WithMeter records per-variant metrics through meter (default: a no-op
// meter; Stats still works). Instruments:
//
//	switchyard.split.requests  counter  {route, variant}
//	switchyard.split.errors    counter  {route, variant}
//	switchyard.split.tokens    counter  {route, variant}  tokens where known
//	switchyard.split.latency   histogram (s) {route, variant}
//	switchyard.split.override_rejected counter {route}
//
// Creating the same instruments again from the same meter (a reload)
// continues the same series.
func WithMeter(m metric.Meter) Option { return func(o *options) { o.meter = m } }

// WithRoute names the route in metric attributes (default "").
func WithRoute(name string) Option { return func(o *options) { o.route = name } }

// WithRegistry keeps the Splitter's counters (Stats, OverridesRejected) in
// r under its route and variant names, so a Splitter built for the same
// route later (a reload) continues them. Without it they start from 0 for
// each Splitter.
func WithRegistry(r *Registry) Option { return func(o *options) { o.registry = r } }

// Registry keeps the counters behind Stats and OverridesRejected by route
// and variant name for the gateway's lifetime, as the OTel counters keep
// their series: the admin API (GET /admin/splits) shows them, and a reload
// (which rebuilds every route with a split) must not reset them. A variant
// dropped by a reload stops growing and continues if it comes back; so
// does a route. They are bounded by the route and variant names ever
// configured. Safe for concurrent use; must not be copied.
type Registry struct {
	_ noCopy

	mu     sync.Mutex
	routes map[string]*routeCounters // by route name; guarded by mu
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{routes: map[string]*routeCounters{}} }

// routeCounters are one route's counters in a Registry.
type routeCounters struct {
	overrideRejected atomic.Int64
	variants         map[string]*variantCounters // by variant name; guarded by Registry.mu
}

// variantCounters are one variant's counters. Atomic.
type variantCounters struct {
	requests, errors, tokens, latencyNanos atomic.Int64
}

// route returns the counters of a route and of the named variants (in
// order), made on first use.
func (r *Registry) route(name string, vs []VariantInfo) (*routeCounters, []*variantCounters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rc := r.routes[name]
	if rc == nil {
		rc = &routeCounters{variants: map[string]*variantCounters{}}
		r.routes[name] = rc
	}
	out := make([]*variantCounters, len(vs))
	for i := range vs {
		vc := rc.variants[vs[i].Name]
		if vc == nil {
			vc = &variantCounters{}
			rc.variants[vs[i].Name] = vc
		}
		out[i] = vc
	}
	return rc, out
}

// Result is the outcome of one request served by a variant.
type Result struct {
	// Status is the HTTP status sent to the client (0 if none).
	Status int
	// Err marks a failed request; a Status >= 500 also counts as an error.
	Err bool
	// Latency from the start of the request to its end.
	Latency time.Duration
	// Tokens produced (or consumed) where known; 0 = unknown.
	Tokens int64
}

// VariantStats is a snapshot of one variant's counters: since the
// Splitter was built, or with WithRegistry since the Registry first saw
// the route and variant.
type VariantStats struct {
	Name     string
	Requests int64
	Errors   int64
	Tokens   int64
	// LatencySum is the sum of recorded latencies.
	LatencySum time.Duration
}

type variantMetrics struct {
	c *variantCounters // in the Registry
	// add and rec hold the variant's attribute set; passing these slices
	// with ... keeps Record from allocating a variadic slice per call.
	add []metric.AddOption
	rec []metric.RecordOption
}

type metrics struct {
	overrideRejected *atomic.Int64 // in the Registry
	variants         []variantMetrics

	requests, errors, tokens, rejected metric.Int64Counter
	latency                            metric.Float64Histogram
	routeAttrs                         []metric.AddOption
}

func newMetrics(m metric.Meter, reg *Registry, route string, vs []VariantInfo) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("split")
	}
	if reg == nil {
		reg = NewRegistry()
	}
	rc, vcs := reg.route(route, vs)
	out := &metrics{overrideRejected: &rc.overrideRejected, variants: make([]variantMetrics, len(vs))}
	var err error
	wrap := func(name string, e error) error {
		if e != nil {
			return fmt.Errorf("split: create instrument %s: %w", name, e)
		}
		return nil
	}
	if out.requests, err = m.Int64Counter("switchyard.split.requests", metric.WithDescription("Requests served per split variant")); err != nil {
		return nil, wrap("requests", err)
	}
	if out.errors, err = m.Int64Counter("switchyard.split.errors", metric.WithDescription("Failed requests per split variant")); err != nil {
		return nil, wrap("errors", err)
	}
	if out.tokens, err = m.Int64Counter("switchyard.split.tokens", metric.WithDescription("Tokens per split variant, where known")); err != nil {
		return nil, wrap("tokens", err)
	}
	if out.rejected, err = m.Int64Counter("switchyard.split.override_rejected", metric.WithDescription("Override headers naming an unknown or non-overridable variant")); err != nil {
		return nil, wrap("override_rejected", err)
	}
	if out.latency, err = m.Float64Histogram("switchyard.split.latency", metric.WithUnit("s"), metric.WithDescription("Request latency per split variant")); err != nil {
		return nil, wrap("latency", err)
	}
	out.routeAttrs = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("route", route)))}
	for i := range vs {
		// Attribute sets are built once here, never per request (STYLE §2).
		o := metric.WithAttributeSet(attribute.NewSet(
			attribute.String("route", route), attribute.String("variant", vs[i].Name)))
		out.variants[i].c = vcs[i]
		out.variants[i].add = []metric.AddOption{o}
		out.variants[i].rec = []metric.RecordOption{o}
	}
	return out, nil
}

// Record adds the outcome of one request served by variant i. Call it once
// per request after the response is done. Safe for concurrent use.
func (s *Splitter) Record(i int, r Result) {
	vm := &s.metrics.variants[i]
	vc := vm.c
	ctx := context.Background()
	vc.requests.Add(1)
	s.metrics.requests.Add(ctx, 1, vm.add...)
	if r.Err || r.Status >= 500 {
		vc.errors.Add(1)
		s.metrics.errors.Add(ctx, 1, vm.add...)
	}
	if r.Tokens > 0 {
		vc.tokens.Add(r.Tokens)
		s.metrics.tokens.Add(ctx, r.Tokens, vm.add...)
	}
	vc.latencyNanos.Add(int64(r.Latency))
	s.metrics.latency.Record(ctx, r.Latency.Seconds(), vm.rec...)
}

// Stats returns a snapshot of the per-variant counters, in variant order.
func (s *Splitter) Stats() []VariantStats {
	out := make([]VariantStats, len(s.variants))
	for i := range s.variants {
		vc := s.metrics.variants[i].c
		out[i] = VariantStats{
			Name:       s.variants[i].Name,
			Requests:   vc.requests.Load(),
			Errors:     vc.errors.Load(),
			Tokens:     vc.tokens.Load(),
			LatencySum: time.Duration(vc.latencyNanos.Load()),
		}
	}
	return out
}

// OverridesRejected returns how many override headers were ignored because
// they named an unknown or non-overridable variant.
func (s *Splitter) OverridesRejected() int64 { return s.metrics.overrideRejected.Load() }
