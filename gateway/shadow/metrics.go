package shadow

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// counters are one route's live counts (field mismatches apart, which
// are kept by field name). The request path only touches atomics; OTel
// reads them in a collection callback.
type counters struct {
	offered, mirrored                                     atomic.Int64
	droppedQueueFull, droppedTooLarge, droppedClosed      atomic.Int64
	errTimeout, errCanceled, errTooLarge, errSend         atomic.Int64
	errPanic                                              atomic.Int64
	compared, statusMismatch, compareSkipped, differences atomic.Int64
	log                                                   logCounters
}

// Stats is a snapshot of a Mirror's counters. They are its route's
// counters (see Registry): with WithRegistry they count over every Mirror
// the registry held for the route, so a reload does not reset them; Live
// is this Mirror's own.
type Stats struct {
	// Offered counts sampled requests handed to OfferRequest. Once every
	// Mirror that counted into them is closed, Offered == Mirrored +
	// Errors() + Dropped().
	Offered int64
	// Mirrored counts shadow requests that got a response.
	Mirrored int64
	// Dropped copies, by reason.
	DroppedQueueFull, DroppedBodyTooLarge, DroppedClosed int64
	// Errors of shadow requests, by reason, and recovered worker panics.
	ErrorsTimeout, ErrorsCanceled, ErrorsResponseTooLarge, ErrorsSend, Panics int64
	// Compared counts shadow responses compared with their primary;
	// StatusMismatch those whose status differed.
	Compared, StatusMismatch int64
	// CompareSkipped counts comparisons whose fields were not compared
	// (truncated or non-JSON bodies) or that were lost on Close.
	CompareSkipped int64
	// FieldMismatch counts mismatches per Compare.Fields entry, in order
	// (kept by field across reloads).
	FieldMismatch []int64
	// Differences counts reports with any difference (shadow error, status
	// or field mismatch).
	Differences int64
	// LogWritten, LogDropped and LogFailed count JSONL log lines (0
	// without Log.Path).
	LogWritten, LogDropped, LogFailed int64
	// Live is the number of copies alive now (<= Config.QueueSize).
	Live int64
}

// Dropped is the sum of the dropped counters.
func (s Stats) Dropped() int64 { return s.DroppedQueueFull + s.DroppedBodyTooLarge + s.DroppedClosed }

// Errors is the sum of the error counters.
func (s Stats) Errors() int64 {
	return s.ErrorsTimeout + s.ErrorsCanceled + s.ErrorsResponseTooLarge + s.ErrorsSend + s.Panics
}

// Live returns the number of shadow copies alive now (at most
// Config.QueueSize).
func (m *Mirror) Live() int64 { return m.live.Load() }

// Stats returns a snapshot of the counters.
func (m *Mirror) Stats() Stats {
	c := m.c
	s := Stats{
		Offered:                c.offered.Load(),
		Mirrored:               c.mirrored.Load(),
		DroppedQueueFull:       c.droppedQueueFull.Load(),
		DroppedBodyTooLarge:    c.droppedTooLarge.Load(),
		DroppedClosed:          c.droppedClosed.Load(),
		ErrorsTimeout:          c.errTimeout.Load(),
		ErrorsCanceled:         c.errCanceled.Load(),
		ErrorsResponseTooLarge: c.errTooLarge.Load(),
		ErrorsSend:             c.errSend.Load(),
		Panics:                 c.errPanic.Load(),
		Compared:               c.compared.Load(),
		StatusMismatch:         c.statusMismatch.Load(),
		CompareSkipped:         c.compareSkipped.Load(),
		Differences:            c.differences.Load(),
		FieldMismatch:          make([]int64, len(m.fieldMismatch)),
		Live:                   m.live.Load(),
	}
	for i, f := range m.fieldMismatch {
		s.FieldMismatch[i] = f.Load()
	}
	if m.log != nil {
		s.LogWritten, s.LogDropped, s.LogFailed = c.log.written.Load(), c.log.dropped.Load(), c.log.failed.Load()
	}
	return s
}

// Registry keeps the shadow counters of each route by route name, so the
// Mirrors that reloads build for a route keep adding to the same counters
// and the exported series only go up while the process lives (a drop
// would read as a restart to Prometheus). The gateway keeps one Registry
// for its lifetime and hands it to every Mirror with WithRegistry, as its
// own per-route series are kept by route name (telemetry.RouteStats).
//
// It exports the counters through one OTel callback, registered by
// NewRegistry, which observes each route's series once per collection
// however many of its Mirrors are open (during a reload the old Mirror
// drains while the new one serves; two observations of one series would
// be summed by the SDK):
//
//	switchyard.shadow.offered         counter {route}
//	switchyard.shadow.mirrored        counter {route}
//	switchyard.shadow.dropped         counter {route, reason=queue_full|body_too_large|closed}
//	switchyard.shadow.errors          counter {route, reason=timeout|canceled|response_too_large|send|panic}
//	switchyard.shadow.compared        counter {route}
//	switchyard.shadow.status_mismatch counter {route}
//	switchyard.shadow.field_mismatch  counter {route, field}
//	switchyard.shadow.differences     counter {route}
//	switchyard.shadow.log_dropped     counter {route}
//	switchyard.shadow.live            gauge   {route}  copies alive in the route's open Mirrors
//	switchyard.shadow.latency         histogram (s) {route, side=primary|shadow}
//
// A field dropped from compare.fields stops growing; a route no Mirror
// serves any more keeps its last values (live 0), and continues from them
// if it comes back. The series are bounded by the route and field names
// ever configured.
//
// Registry is safe for concurrent use and must not be copied.
type Registry struct {
	_ noCopy

	// immutable after NewRegistry; zero without a meter
	inst instruments
	reg  metric.Registration

	mu     sync.Mutex
	routes map[string]*routeCounters // by route name; guarded by mu
}

type instruments struct {
	offered, mirrored, compared, statusMismatch, differences metric.Int64ObservableCounter
	dropped, errors, fieldMismatch, logDropped               metric.Int64ObservableCounter
	live                                                     metric.Int64ObservableGauge
	latency                                                  metric.Float64Histogram
}

// routeCounters are one route's counters in a Registry.
type routeCounters struct {
	c counters // atomic

	// immutable
	primary, shade []metric.RecordOption // latency attribute sets
	route          attribute.KeyValue
	plain          metric.ObserveOption // {route}

	// guarded by Registry.mu
	fields  map[string]*atomic.Int64 // by Compare.Fields entry
	series  []series                 // what the callback observes
	mirrors map[*Mirror]struct{}     // open Mirrors, for the live gauge
}

// series is one observed counter value.
type series struct {
	inst metric.Int64Observable
	opt  metric.ObserveOption
	v    *atomic.Int64
}

// NewRegistry creates the instruments through meter and registers their
// callback (meter nil: the counters are kept but not exported).
func NewRegistry(meter metric.Meter) (*Registry, error) {
	r := &Registry{routes: map[string]*routeCounters{}}
	if meter == nil {
		return r, nil
	}
	wrap := func(name string, err error) error { return fmt.Errorf("shadow: create instrument %s: %w", name, err) }
	var err error
	if r.inst.latency, err = meter.Float64Histogram("switchyard.shadow.latency", metric.WithUnit("s"),
		metric.WithDescription("Latency of mirrored requests, primary and shadow")); err != nil {
		return nil, wrap("latency", err)
	}
	counters := []struct {
		inst       *metric.Int64ObservableCounter
		name, desc string
	}{
		{&r.inst.offered, "offered", "Sampled requests offered to the shadow"},
		{&r.inst.mirrored, "mirrored", "Shadow requests that got a response"},
		{&r.inst.compared, "compared", "Shadow responses compared with the primary"},
		{&r.inst.statusMismatch, "status_mismatch", "Compared requests whose status codes differ"},
		{&r.inst.differences, "differences", "Compared requests with any difference"},
		{&r.inst.dropped, "dropped", "Shadow copies dropped, by reason"},
		{&r.inst.errors, "errors", "Shadow requests that failed, by reason"},
		{&r.inst.fieldMismatch, "field_mismatch", "Compared requests whose configured field differs, by field"},
		{&r.inst.logDropped, "log_dropped", "Difference log lines dropped (queue full or line too large)"},
	}
	insts := make([]metric.Observable, 0, len(counters)+1)
	for _, c := range counters {
		if *c.inst, err = meter.Int64ObservableCounter("switchyard.shadow."+c.name, metric.WithDescription(c.desc)); err != nil {
			return nil, wrap(c.name, err)
		}
		insts = append(insts, *c.inst)
	}
	if r.inst.live, err = meter.Int64ObservableGauge("switchyard.shadow.live", metric.WithDescription("Shadow copies alive (bounded by queue_size)")); err != nil {
		return nil, wrap("live", err)
	}
	insts = append(insts, r.inst.live)
	if r.reg, err = meter.RegisterCallback(r.observe, insts...); err != nil {
		return nil, fmt.Errorf("shadow: register metrics callback: %w", err)
	}
	return r, nil
}

// Close stops exporting the counters (Mirrors using r still count). The
// gateway's Registry lives as long as its meter; it closes only one made
// for a configuration that then failed to load.
func (r *Registry) Close() error {
	if r.reg == nil {
		return nil
	}
	return r.reg.Unregister()
}

// observe is the collection callback: each route's series once.
func (r *Registry) observe(_ context.Context, o metric.Observer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rc := range r.routes {
		for _, s := range rc.series {
			o.ObserveInt64(s.inst, s.v.Load(), s.opt)
		}
		var live int64
		for m := range rc.mirrors {
			live += m.live.Load()
		}
		o.ObserveInt64(r.inst.live, live, rc.plain)
	}
	return nil
}

// attach opens m on its route's counters, made on first use, and returns
// them with the counter of each of m's compare fields.
func (r *Registry) attach(m *Mirror) (*routeCounters, []*atomic.Int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rc := r.routes[m.route]
	if rc == nil {
		rc = r.newRouteLocked(m.route)
		r.routes[m.route] = rc
	}
	rc.mirrors[m] = struct{}{}
	fields := make([]*atomic.Int64, len(m.cmp.fields))
	for i, f := range m.cmp.fields {
		name := f.String()
		v := rc.fields[name]
		if v == nil {
			v = new(atomic.Int64)
			rc.fields[name] = v
			if r.inst.fieldMismatch != nil {
				rc.series = append(rc.series, series{r.inst.fieldMismatch, rc.with(attribute.String("field", name)), v})
			}
		}
		fields[i] = v
	}
	return rc, fields
}

// detach closes m on its route's counters; they stay.
func (r *Registry) detach(m *Mirror) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc := r.routes[m.route]; rc != nil {
		delete(rc.mirrors, m)
	}
}

// newRouteLocked builds a route's counters and their series. Attribute
// sets are built here, once per route, never per request (STYLE §2).
func (r *Registry) newRouteLocked(name string) *routeCounters {
	rc := &routeCounters{route: attribute.String("route", name), fields: map[string]*atomic.Int64{}, mirrors: map[*Mirror]struct{}{}}
	rc.plain = rc.with()
	rc.primary = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(rc.route, attribute.String("side", "primary")))}
	rc.shade = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(rc.route, attribute.String("side", "shadow")))}
	if r.inst.offered == nil {
		return rc
	}
	c := &rc.c
	reason := func(s string) metric.ObserveOption { return rc.with(attribute.String("reason", s)) }
	rc.series = []series{
		{r.inst.offered, rc.plain, &c.offered},
		{r.inst.mirrored, rc.plain, &c.mirrored},
		{r.inst.compared, rc.plain, &c.compared},
		{r.inst.statusMismatch, rc.plain, &c.statusMismatch},
		{r.inst.differences, rc.plain, &c.differences},
		{r.inst.dropped, reason("queue_full"), &c.droppedQueueFull},
		{r.inst.dropped, reason("body_too_large"), &c.droppedTooLarge},
		{r.inst.dropped, reason("closed"), &c.droppedClosed},
		{r.inst.errors, reason("timeout"), &c.errTimeout},
		{r.inst.errors, reason("canceled"), &c.errCanceled},
		{r.inst.errors, reason("response_too_large"), &c.errTooLarge},
		{r.inst.errors, reason("send"), &c.errSend},
		{r.inst.errors, reason("panic"), &c.errPanic},
		{r.inst.logDropped, rc.plain, &c.log.dropped},
	}
	return rc
}

// with is the route's attribute set plus kv.
func (rc *routeCounters) with(kv ...attribute.KeyValue) metric.ObserveOption {
	return metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{rc.route}, kv...)...))
}

// recordLatency runs on a worker, off the request path.
func (m *Mirror) recordLatency(primary, shadow time.Duration, shadowOK bool) {
	h := m.reg.inst.latency
	if h == nil {
		return
	}
	ctx := context.Background()
	h.Record(ctx, primary.Seconds(), m.rc.primary...)
	if shadowOK {
		h.Record(ctx, shadow.Seconds(), m.rc.shade...)
	}
}
