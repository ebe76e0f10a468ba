package shadow

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// counters are the Mirror's live counts. The request path only touches
// atomics; OTel reads them in a collection callback.
type counters struct {
	offered, mirrored                                     atomic.Int64
	droppedQueueFull, droppedTooLarge, droppedClosed      atomic.Int64
	errTimeout, errCanceled, errTooLarge, errSend         atomic.Int64
	errPanic                                              atomic.Int64
	compared, statusMismatch, compareSkipped, differences atomic.Int64
	fieldMismatch                                         []atomic.Int64
}

// Stats is a snapshot of a Mirror's counters.
type Stats struct {
	// Offered counts sampled requests handed to OfferRequest. Once the
	// Mirror is closed, Offered == Mirrored + Errors() + Dropped().
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
	// FieldMismatch counts mismatches per Compare.Fields entry, in order.
	FieldMismatch []int64
	// Differences counts reports with any difference (shadow error, status
	// or field mismatch).
	Differences int64
	// LogWritten, LogDropped and LogFailed count JSONL log lines.
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
	c := &m.c
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
		FieldMismatch:          make([]int64, len(c.fieldMismatch)),
		Live:                   m.live.Load(),
	}
	for i := range c.fieldMismatch {
		s.FieldMismatch[i] = c.fieldMismatch[i].Load()
	}
	if m.log != nil {
		s.LogWritten, s.LogDropped, s.LogFailed = m.log.written.Load(), m.log.dropped.Load(), m.log.failed.Load()
	}
	return s
}

// metrics exports the counters through OTel:
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
//	switchyard.shadow.live            gauge   {route}
//	switchyard.shadow.latency         histogram (s) {route, side=primary|shadow}
//
// Counters are observable (read from the atomics at collection), so the
// request path never calls into OTel; they start from 0 for each Mirror,
// which a reload shows as a counter reset.
type metrics struct {
	reg            metric.Registration
	latency        metric.Float64Histogram
	primary, shade []metric.RecordOption
}

func newMetrics(meter metric.Meter, m *Mirror) (*metrics, error) {
	out := &metrics{}
	if meter == nil {
		return out, nil
	}
	wrap := func(name string, err error) error { return fmt.Errorf("shadow: create instrument %s: %w", name, err) }
	route := attribute.String("route", m.route)
	set := func(kv ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{route}, kv...)...))
	}
	var err error
	if out.latency, err = meter.Float64Histogram("switchyard.shadow.latency", metric.WithUnit("s"),
		metric.WithDescription("Latency of mirrored requests, primary and shadow")); err != nil {
		return nil, wrap("latency", err)
	}
	out.primary = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(route, attribute.String("side", "primary")))}
	out.shade = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(route, attribute.String("side", "shadow")))}

	type obs struct {
		inst metric.Int64Observable
		opt  metric.ObserveOption
		val  func() int64
	}
	var all []obs
	counter := func(name, desc string) (metric.Int64ObservableCounter, error) {
		c, err := meter.Int64ObservableCounter("switchyard.shadow."+name, metric.WithDescription(desc))
		if err != nil {
			return nil, wrap(name, err)
		}
		return c, nil
	}
	plain := []struct {
		name, desc string
		v          *atomic.Int64
	}{
		{"offered", "Sampled requests offered to the shadow", &m.c.offered},
		{"mirrored", "Shadow requests that got a response", &m.c.mirrored},
		{"compared", "Shadow responses compared with the primary", &m.c.compared},
		{"status_mismatch", "Compared requests whose status codes differ", &m.c.statusMismatch},
		{"differences", "Compared requests with any difference", &m.c.differences},
	}
	for _, p := range plain {
		c, err := counter(p.name, p.desc)
		if err != nil {
			return nil, err
		}
		v := p.v
		all = append(all, obs{c, set(), v.Load})
	}
	dropped, err := counter("dropped", "Shadow copies dropped, by reason")
	if err != nil {
		return nil, err
	}
	for reason, v := range map[string]*atomic.Int64{"queue_full": &m.c.droppedQueueFull, "body_too_large": &m.c.droppedTooLarge, "closed": &m.c.droppedClosed} {
		all = append(all, obs{dropped, set(attribute.String("reason", reason)), v.Load})
	}
	errs, err := counter("errors", "Shadow requests that failed, by reason")
	if err != nil {
		return nil, err
	}
	for reason, v := range map[string]*atomic.Int64{"timeout": &m.c.errTimeout, "canceled": &m.c.errCanceled, "response_too_large": &m.c.errTooLarge, "send": &m.c.errSend, "panic": &m.c.errPanic} {
		all = append(all, obs{errs, set(attribute.String("reason", reason)), v.Load})
	}
	fields, err := counter("field_mismatch", "Compared requests whose configured field differs, by field")
	if err != nil {
		return nil, err
	}
	for i, f := range m.cmp.fields {
		all = append(all, obs{fields, set(attribute.String("field", f.String())), m.c.fieldMismatch[i].Load})
	}
	logDropped, err := counter("log_dropped", "Difference log lines dropped (queue full or line too large)")
	if err != nil {
		return nil, err
	}
	all = append(all, obs{logDropped, set(), func() int64 {
		if m.log == nil {
			return 0
		}
		return m.log.dropped.Load()
	}})
	live, err := meter.Int64ObservableGauge("switchyard.shadow.live", metric.WithDescription("Shadow copies alive (bounded by queue_size)"))
	if err != nil {
		return nil, wrap("live", err)
	}
	all = append(all, obs{live, set(), m.live.Load})

	insts := make([]metric.Observable, len(all))
	for i := range all {
		insts[i] = all[i].inst
	}
	out.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, a := range all {
			o.ObserveInt64(a.inst, a.val(), a.opt)
		}
		return nil
	}, insts...)
	if err != nil {
		return nil, fmt.Errorf("shadow: register metrics callback: %w", err)
	}
	return out, nil
}

// recordLatency runs on a worker, off the request path.
func (mt *metrics) recordLatency(primary, shadow time.Duration, shadowOK bool) {
	if mt.latency == nil {
		return
	}
	ctx := context.Background()
	mt.latency.Record(ctx, primary.Seconds(), mt.primary...)
	if shadowOK {
		mt.latency.Record(ctx, shadow.Seconds(), mt.shade...)
	}
}

func (mt *metrics) unregister() {
	if mt.reg != nil {
		_ = mt.reg.Unregister()
	}
}
