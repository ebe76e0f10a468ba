package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard-dev/switchyard/gateway/reqkey"
)

// ppm is the sampling resolution: parts per million.
const ppm = 1_000_000

// Option is a rare knob for New.
type Option func(*options)

type options struct {
	meter    metric.Meter
	registry *Registry
	route    string
	hook     func(*Report)
	logger   *slog.Logger
}

// WithMeter exports the metrics through meter (default: none; Stats still
// works), with counters that start from 0 for this Mirror and leave the
// export when it closes. See Registry for the instruments. A gateway that
// rebuilds Mirrors on reload uses WithRegistry instead.
func WithMeter(m metric.Meter) Option { return func(o *options) { o.meter = m } }

// WithRegistry keeps the Mirror's counters in r, under its route name
// (WithRoute): a Mirror built for the same route later (a reload) keeps
// adding to them, and r exports them (WithMeter is then ignored).
func WithRegistry(r *Registry) Option { return func(o *options) { o.registry = r } }

// WithRoute names the route in metrics and in the log (default "").
func WithRoute(name string) Option { return func(o *options) { o.route = name } }

// WithReportHook calls fn with every comparison Report, on a worker
// goroutine. fn must not block and must not keep r after returning.
func WithReportHook(fn func(r *Report)) Option { return func(o *options) { o.hook = fn } }

// WithLogger logs recovered worker panics (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Primary is what the gateway reports about the primary's response.
type Primary struct {
	// Status sent to the client.
	Status int
	// ContentType of the primary response ("text/event-stream" makes it
	// an SSE stream to assemble).
	ContentType []byte
	// Latency of the primary, as the gateway measured it.
	Latency time.Duration
}

// phases of a Handle.
const (
	phaseSend int32 = iota
	phaseCompare
)

// Handle is one shadow copy in flight. The gateway writes the primary's
// response body into it (bounded copy) and calls Finish exactly once; for
// a copy whose body arrives later (BodyLater) it also feeds the body with
// WriteBody and ends it with EndBody, before Finish. All methods are
// no-ops on a nil Handle, so the gateway may call them unconditionally. A
// Handle must not be used after Finish.
type Handle struct {
	m *Mirror

	// set by Offer (and WriteBody/EndBody for a later body), read by the
	// worker
	copy      Copy
	id        []byte
	phase     int32 // written before pending is decremented
	later     bool  // the body arrives through WriteBody/EndBody
	ended     bool  // EndBody was called
	abandoned bool  // never sent (body too large or incomplete); not compared

	// set by the worker before it decrements pending
	answer   Answer
	sLatency time.Duration
	sErr     error
	sReason  string

	// set by the gateway (Write, Finish) before it decrements pending
	pBody      []byte
	pTruncated bool
	pCT        []byte
	pStatus    int
	pLatency   time.Duration

	// pending counts the two halves (shadow sent, primary finished); the
	// one that brings it to 0 hands the Handle to comparison.
	pending atomic.Int32
}

// Mirror mirrors a sampled share of one route's requests to a shadow target
// and compares the answers. Create it with New; it is safe for concurrent
// use and must not be copied. Its goroutines (Config.Concurrency workers
// and the log writer) stop on Close or when the ctx given to New is done.
type Mirror struct {
	_ noCopy

	// immutable after New
	cfg           Config
	sender        Sender
	route         string
	cmp           comparer
	marker        []byte
	key           reqkey.Extractor
	seed          uint64
	threshold     uint64 // sampled when hash % ppm < threshold
	logRate       uint64 // log when rand % ppm < logRate
	hook          func(*Report)
	logger        *slog.Logger
	log           *diffLog // nil without Log.Path
	reg           *Registry
	ownReg        bool            // reg was made by New for this Mirror alone
	rc            *routeCounters  // the route's entry in reg
	c             *counters       // &rc.c
	fieldMismatch []*atomic.Int64 // per cmp.fields entry, in rc

	ctx    context.Context
	cancel context.CancelFunc
	work   chan *Handle // capacity QueueSize >= live Handles
	free   chan *Handle // reusable Handles, at most QueueSize

	// atomic
	live    atomic.Int64 // Handles between Offer and release
	sending atomic.Int64 // Handles not yet sent
	workers atomic.Int64 // running workers
	closed  atomic.Bool  // Close was called
	recent  recent       // the last difference reports (Recent)
}

// New validates cfg and starts the workers. ctx bounds their lifetime as
// Close does. sender must not be nil.
func New(ctx context.Context, cfg Config, sender Sender, opts ...Option) (*Mirror, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sender == nil {
		return nil, fmt.Errorf("%w: sender: nil", ErrInvalidConfig)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	m := &Mirror{
		cfg:       cfg,
		sender:    sender,
		route:     o.route,
		marker:    []byte(cfg.MarkerHeader),
		key:       reqkey.New(cfg.Key),
		seed:      xxhash.Sum64String(cfg.Salt),
		threshold: uint64(math.Round(cfg.SampleRate * ppm / 100)),
		logRate:   uint64(math.Round(cfg.Log.SampleRate * ppm / 100)),
		hook:      o.hook,
		logger:    o.logger,
		work:      make(chan *Handle, cfg.QueueSize),
		free:      make(chan *Handle, cfg.QueueSize),
		cmp:       comparer{abs: cfg.Compare.AbsTolerance, rel: cfg.Compare.RelTolerance, maxValue: cfg.Log.MaxValueBytes},
	}
	if m.cmp.maxValue <= 0 {
		m.cmp.maxValue = DefaultLogMaxValueBytes
	}
	for _, f := range cfg.Compare.Fields {
		p, _ := ParsePath(f) // Validate parsed it
		m.cmp.fields = append(m.cmp.fields, p)
	}
	if m.reg = o.registry; m.reg == nil {
		reg, err := NewRegistry(o.meter)
		if err != nil {
			return nil, err
		}
		m.reg, m.ownReg = reg, true
	}
	m.rc, m.fieldMismatch = m.reg.attach(m)
	m.c = &m.rc.c
	m.ctx, m.cancel = context.WithCancel(ctx)
	if cfg.Log.Path != "" {
		// The log outlives m.ctx: Close cancels m.ctx first, and the
		// copies that cancellation cuts are compared (and their
		// differences logged) after it; Close then stops the log.
		l, err := newDiffLog(ctx, cfg.Log, &m.c.log)
		if err != nil {
			m.cancel()
			m.detach()
			return nil, err
		}
		m.log = l
	}
	m.workers.Store(int64(cfg.Concurrency))
	for i := 0; i < cfg.Concurrency; i++ {
		go m.worker()
	}
	return m, nil
}

// Offer decides whether to mirror r and, if so, copies it (with the
// marker header) and queues it for the shadow. It never blocks: when the
// request is not sampled, too large, or the queue is full it returns nil
// (the latter two are counted). The caller must call Finish on a non-nil
// Handle once the primary's response is known, and, when the body comes
// later (Handle.BodyLater), feed it and call EndBody first. Offer does
// not keep r.
func (m *Mirror) Offer(r Request, requestID []byte) *Handle {
	if !m.Sample(r) {
		return nil
	}
	m.c.offered.Add(1)
	// ctx.Err is one atomic load once done; the ctx ends on Close too.
	if m.closed.Load() || m.ctx.Err() != nil {
		m.c.droppedClosed.Add(1)
		return nil
	}
	if m.live.Add(1) > int64(m.cfg.QueueSize) {
		m.live.Add(-1)
		m.c.droppedQueueFull.Add(1)
		return nil
	}
	h := m.getHandle()
	switch r.CopyTo(&h.copy) {
	case BodyTooLarge:
		m.c.droppedTooLarge.Add(1)
		m.release(h)
		return nil
	case BodyLater:
		h.later = true
	}
	h.copy.AddHeader(m.marker, one)
	h.id = append(h.id[:0], requestID...)
	h.phase = phaseSend
	h.pending.Store(2)
	if !h.later {
		m.queueSend(h)
	}
	return h
}

// queueSend hands a complete copy to the workers.
func (m *Mirror) queueSend(h *Handle) {
	m.sending.Add(1)
	select {
	case m.work <- h:
	default: // unreachable: live <= QueueSize == cap(work)
		m.sending.Add(-1)
		m.c.droppedQueueFull.Add(1)
		h.abandon()
	}
}

// BodyLater reports whether the copy's body arrives through WriteBody.
func (h *Handle) BodyLater() bool { return h != nil && h.later && !h.ended }

// WriteBody appends a piece of the request body to a copy whose body
// arrives later; past Config.MaxBodyBytes the copy is abandoned (counted
// as too large) when EndBody comes. It copies p and never fails.
func (h *Handle) WriteBody(p []byte) (int, error) {
	if h.BodyLater() && !h.abandoned && !h.copy.appendBody(p) {
		h.abandoned = true
		h.m.c.droppedTooLarge.Add(1)
	}
	return len(p), nil
}

// EndBody ends a later body: complete says the whole body was read (it is
// then sent, unless over the limit or the Mirror closed); false abandons
// the copy (counted as too large: a body that did not end while the
// primary ran cannot be replayed). Call it once, before Finish.
func (h *Handle) EndBody(complete bool) {
	if !h.BodyLater() {
		return
	}
	h.ended = true
	m := h.m
	switch {
	case h.abandoned:
	case !complete:
		m.c.droppedTooLarge.Add(1)
	case m.closed.Load() || m.ctx.Err() != nil:
		m.c.droppedClosed.Add(1)
	default:
		m.queueSend(h)
		return
	}
	h.abandon()
}

// abandon ends the send half of h without sending; the Handle is released
// once the primary has finished too.
func (h *Handle) abandon() {
	h.abandoned = true
	h.phase = phaseCompare
	h.done()
}

var one = []byte("1")

// ErrResponseTooLarge is what a Sender wraps when the shadow's response is
// over what it reads (counted as response_too_large).
var ErrResponseTooLarge = errors.New("shadow: response too large")

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Sample reports whether r falls in the sampled share.
func (m *Mirror) Sample(r reqkey.Request) bool {
	switch {
	case m.threshold >= ppm:
		return true
	case m.threshold == 0:
		return false
	}
	if m.cfg.SampleBy == SampleKey {
		if k, _ := m.key.Key(r); k != nil {
			return mix64(xxhash.Sum64(k)^m.seed)%ppm < m.threshold
		}
	}
	return rand.Uint64N(ppm) < m.threshold
}

// SampleKey reports whether key falls in the sampled share (SampleBy
// "key" semantics).
func (m *Mirror) SampleKey(key []byte) bool {
	return mix64(xxhash.Sum64(key)^m.seed)%ppm < m.threshold
}

// Write appends a piece of the primary's response body, up to
// Config.MaxResponseBytes; the rest is discarded and the body marked
// truncated (not compared field by field). It copies p and never fails,
// so it can sit behind an io.MultiWriter that tees a streamed body.
func (h *Handle) Write(p []byte) (int, error) {
	if h == nil {
		return len(p), nil
	}
	room := h.m.cfg.MaxResponseBytes - len(h.pBody)
	if len(p) > room {
		h.pTruncated = true
		if room > 0 {
			h.pBody = append(h.pBody, p[:room]...)
		}
		return len(p), nil
	}
	h.pBody = append(h.pBody, p...)
	return len(p), nil
}

// Finish hands over the primary's outcome; the body must have been
// written with Write before. Comparison then runs on a worker goroutine.
// Call it exactly once per non-nil Handle, after the primary is done.
func (h *Handle) Finish(p Primary) {
	if h == nil {
		return
	}
	h.pStatus, h.pLatency = p.Status, p.Latency
	h.pCT = append(h.pCT[:0], p.ContentType...)
	h.done()
}

// done is called by whichever half finishes; the second one hands the
// Handle to a worker for comparison.
func (h *Handle) done() {
	if h.pending.Add(-1) != 0 {
		return
	}
	m := h.m
	// The shadow half is done (sent, counted as mirrored or as an error);
	// what can still be lost here is only the comparison.
	if m.ctx.Err() != nil {
		m.c.compareSkipped.Add(1)
		m.release(h)
		return
	}
	select {
	case m.work <- h:
	default: // unreachable: live <= QueueSize == cap(work)
		m.c.compareSkipped.Add(1)
		m.release(h)
	}
}

func (m *Mirror) getHandle() *Handle {
	select {
	case h := <-m.free:
		return h
	default:
		return &Handle{m: m, copy: Copy{maxBody: m.cfg.MaxBodyBytes}, answer: Answer{max: m.cfg.MaxResponseBytes}}
	}
}

// release resets h and keeps it for reuse (at most QueueSize are kept).
func (m *Mirror) release(h *Handle) {
	h.copy.reset()
	h.answer.reset()
	h.id, h.pBody, h.pCT = h.id[:0], h.pBody[:0], h.pCT[:0]
	h.pTruncated, h.pStatus, h.pLatency = false, 0, 0
	h.sErr, h.sReason, h.sLatency = nil, "", 0
	h.later, h.ended, h.abandoned = false, false, false
	m.live.Add(-1)
	select {
	case m.free <- h:
	default:
	}
}

// worker sends and compares until the Mirror is closed.
func (m *Mirror) worker() {
	defer m.workers.Add(-1)
	for {
		select {
		case <-m.ctx.Done():
			return
		case h := <-m.work:
			m.process(h)
		}
	}
}

func (m *Mirror) process(h *Handle) {
	if h.phase == phaseSend {
		m.send(h)
		m.sending.Add(-1)
		h.phase = phaseCompare
		if h.pending.Add(-1) != 0 {
			return // Finish hands it back
		}
	}
	// From here the worker owns h alone.
	defer func() {
		if r := recover(); r != nil {
			// One bad response must not kill the worker (STYLE §3).
			m.c.errPanic.Add(1)
			m.logger.Error("shadow: compare panic", "route", m.route, "panic", r, "stack", string(debug.Stack()))
		}
		m.release(h)
	}()
	if !h.abandoned {
		m.compare(h)
	}
}

// errSenderPanic stands for a Sender that panicked.
var errSenderPanic = errors.New("shadow: sender panicked")

func (m *Mirror) send(h *Handle) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := m.safeSend(ctx, h)
	h.sLatency = time.Since(start)
	// Classify a cut send on the Mirror's own context: a Sender whose
	// connection Close cut may report the broken connection rather than
	// ctx's error; it was still cut by the Close.
	ctxErr := ctx.Err()
	if m.ctx.Err() != nil {
		ctxErr = context.Canceled
	}
	if err != nil {
		h.sErr = err
		switch {
		case errors.Is(err, errSenderPanic):
			h.sReason = "panic"
			m.c.errPanic.Add(1)
		case errors.Is(ctxErr, context.Canceled) || errors.Is(err, context.Canceled):
			// Close cancels the context and the senders cut their
			// connections; whichever the send noticed first, it was cut
			// by the Close.
			h.sReason = "canceled"
			m.c.errCanceled.Add(1)
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fasthttp.ErrTimeout) || errors.Is(ctxErr, context.DeadlineExceeded) || isTimeout(err):
			h.sReason = "timeout"
			m.c.errTimeout.Add(1)
		case errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.Is(err, ErrResponseTooLarge):
			h.sReason = "response_too_large"
			m.c.errTooLarge.Add(1)
		default:
			h.sReason = "send"
			m.c.errSend.Add(1)
		}
		return
	}
	m.c.mirrored.Add(1)
}

func (m *Mirror) safeSend(ctx context.Context, h *Handle) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.logger.Error("shadow: sender panic", "route", m.route, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errSenderPanic, r)
		}
	}()
	return m.sender.Send(ctx, m.cfg.Target, &h.copy, &h.answer)
}

func (m *Mirror) compare(h *Handle) {
	r := &Report{
		Time:           time.Now().UTC(),
		RequestID:      string(h.id),
		Route:          m.route,
		Target:         m.cfg.Target,
		PrimaryStatus:  h.pStatus,
		PrimaryLatency: h.pLatency,
		ShadowLatency:  h.sLatency,
		PrimaryMillis:  float64(h.pLatency) / 1e6,
		ShadowMillis:   float64(h.sLatency) / 1e6,
	}
	m.recordLatency(h.pLatency, h.sLatency, h.sErr == nil)
	if h.sErr != nil {
		r.ShadowError = h.sReason + ": " + h.sErr.Error()
		r.Skipped = "shadow_error"
	} else {
		r.ShadowStatus = h.answer.Status
		r.StatusMatch = r.PrimaryStatus == r.ShadowStatus
		m.c.compared.Add(1)
		if !r.StatusMatch {
			m.c.statusMismatch.Add(1)
		}
		m.cmp.compareBodies(r,
			body{contentType: h.pCT, data: h.pBody, truncated: h.pTruncated},
			body{contentType: h.answer.ContentType, data: h.answer.Body, truncated: h.answer.TooLarge})
		for i := range r.Fields {
			if !r.Fields[i].Equal {
				m.fieldMismatch[i].Add(1)
			}
		}
		if r.Skipped != "" && r.Skipped != "no_fields" {
			m.c.compareSkipped.Add(1)
		}
	}
	if r.Different() {
		m.c.differences.Add(1)
		m.recent.add(r)
		if m.log != nil && (m.logRate >= ppm || rand.Uint64N(ppm) < m.logRate) {
			m.log.offer(r)
		}
	}
	if m.hook != nil {
		m.hook(r)
	}
}

// Close stops accepting copies, lets queued ones finish for up to half of
// Config.CloseTimeout, then cancels in-flight sends, stops the workers
// and drops what is left (counted as "closed"), and flushes the log. It
// returns within about CloseTimeout; ErrCloseTimeout if a Sender ignored
// its ctx (those goroutines end when Send returns).
func (m *Mirror) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	half := m.cfg.CloseTimeout / 2
	m.waitUntil(half, func() bool { return m.sending.Load() == 0 })
	m.cancel()
	var err error
	if !m.waitUntil(half, func() bool { return m.workers.Load() == 0 }) {
		err = ErrCloseTimeout
	}
	for {
		select {
		case h := <-m.work:
			if h.phase == phaseSend {
				m.sending.Add(-1)
				m.c.droppedClosed.Add(1)
			} else {
				m.c.compareSkipped.Add(1)
			}
			m.release(h)
			continue
		default:
		}
		break
	}
	if m.log != nil {
		m.log.close()
	}
	m.detach()
	return err
}

// detach takes m off its route's live gauge, and stops the export of a
// Registry New made for m alone.
func (m *Mirror) detach() {
	m.reg.detach(m)
	if m.ownReg {
		_ = m.reg.Close()
	}
}

// waitUntil polls cond until it holds or d has passed. Only Close uses
// it; polling keeps Close free of helper goroutines.
func (m *Mirror) waitUntil(d time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
			if cond() {
				return true
			}
		}
	}
}

// mix64 is the murmur3 64-bit finalizer.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
