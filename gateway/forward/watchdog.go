package forward

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The watchdog looks after exchanges under way without a goroutine or a
// timer per request: every watchEvery it visits every Exchange (they are
// pooled, so there are about as many as the peak concurrency) and
//
//   - aborts the upstream exchange of a request whose client went away —
//     an HTTP/2 stream reset (its context is done), or an HTTP/1.1 client
//     that closed its connection while waiting for a buffered answer — so
//     the engine stops generating for nobody (streamed answers notice the
//     failed write by themselves);
//   - cuts an HTTP/2 request body (or a gRPC call's first message) that is
//     still arriving after Limits.ReadTimeout, so slow bodies cannot hold
//     streams open forever.
//
// A request reaches its node without any of this costing it more than two
// atomic stores and an uncontended lock; cancellation takes effect within
// watchEvery.

// watchEvery is the watchdog's period.
const watchEvery = 200 * time.Millisecond

// watchAfter: requests younger than this are not checked (most are done).
const watchAfter = 100 * time.Millisecond

// Exchange phases, as the watchdog sees them.
const (
	phaseIdle    int32 = iota // pooled, or answered
	phaseBody                 // the frontend reads the request body
	phaseForward              // waiting for the node's answer
)

// ClientProbe tells whether an HTTP/1.1 client is still there. It must
// not block and must not consume client bytes.
type ClientProbe interface {
	Gone() bool
}

// watch is one Exchange's state for the watchdog. mu orders the
// watchdog's actions against the exchange ending: the watchdog acts only
// while it holds mu and the generation is the one it saw.
type watch struct {
	mu     sync.Mutex
	gen    uint64 // guarded by mu; bumped when the exchange is reset
	phase  atomic.Int32
	since  atomic.Int64 // unix nanos the phase began
	bodyW  http.ResponseWriter
	client ClientProbe
	gone   atomic.Bool               // the watchdog found the client gone
	timer  atomic.Pointer[callTimer] // a gRPC call's, whose far limits the watchdog arms
}

// registry holds every Exchange the core made.
type registry struct {
	mu  sync.Mutex
	all []*Exchange
}

func (g *registry) add(x *Exchange) {
	g.mu.Lock()
	g.all = append(g.all, x)
	g.mu.Unlock()
}

func (g *registry) snapshot(buf []*Exchange) []*Exchange {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append(buf[:0], g.all...)
}

// Run runs the watchdog until ctx ends.
func (c *Core) Run(ctx context.Context) {
	c.watching.Store(true)
	defer c.watching.Store(false)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var buf []*Exchange
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			buf = c.reg.snapshot(buf)
			readTimeout := int64(0)
			if st := c.set.Load(); st != nil {
				readTimeout = int64(st.Config().Limits.ReadTimeout)
			}
			for _, x := range buf {
				x.check(now.UnixNano(), readTimeout)
			}
		}
	}
}

// check is the watchdog's visit to one exchange.
func (x *Exchange) check(now, readTimeout int64) {
	w := &x.w
	phase := w.phase.Load()
	if phase == phaseIdle || now-w.since.Load() < int64(watchAfter) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.phase.Load() != phase { // it moved on meanwhile
		return
	}
	switch phase {
	case phaseBody:
		if readTimeout > 0 && now-w.since.Load() > readTimeout && w.bodyW != nil {
			_ = http.NewResponseController(w.bodyW).SetReadDeadline(time.Unix(0, now))
		}
	case phaseForward:
		if t := w.timer.Load(); t != nil {
			t.armDeferred()
		}
		if x.clientGone() {
			w.gone.Store(true)
			x.call.Abort()
		}
	}
}

// clientGone reports whether the client went away. Called by the
// watchdog under w.mu.
func (x *Exchange) clientGone() bool {
	if ctx := x.Req.Ctx; ctx != nil {
		return ctx.Err() != nil
	}
	if p := x.w.client; p != nil {
		return p.Gone()
	}
	return false
}

// BeginBody tells the watchdog that the frontend reads the request body
// through w (HTTP/2): a read still under way after Limits.ReadTimeout is
// cut, counted from Req.Start when set. EndBody ends that.
func (x *Exchange) BeginBody(w http.ResponseWriter) {
	since := x.Req.Start
	if since.IsZero() {
		since = time.Now()
	}
	x.w.mu.Lock()
	x.w.bodyW = w
	x.w.since.Store(since.UnixNano())
	x.w.phase.Store(phaseBody)
	x.w.mu.Unlock()
}

// EndBody ends the body phase begun with BeginBody.
func (x *Exchange) EndBody() {
	x.w.mu.Lock()
	x.w.bodyW = nil
	x.w.phase.Store(phaseIdle)
	x.w.mu.Unlock()
}

// WatchClient lets the watchdog ask an HTTP/1.1 client connection
// whether the client is still there while the request waits for its
// node. Call it before Forward.
func (x *Exchange) WatchClient(p ClientProbe) { x.w.client = p }

// forwarding marks the exchange as waiting for its node (the watchdog may
// abort it when the client goes); the start time is the request's.
func (x *Exchange) forwarding() {
	x.w.since.Store(x.start.UnixNano())
	x.w.phase.Store(phaseForward)
}

// endWatch ends the watchdog's interest; from here on it leaves x alone
// until the next request.
func (x *Exchange) endWatch() {
	x.w.mu.Lock()
	x.w.gen++
	x.w.phase.Store(phaseIdle)
	x.w.bodyW, x.w.client = nil, nil
	x.w.gone.Store(false)
	x.w.timer.Store(nil)
	x.w.mu.Unlock()
}

// ErrRequestTimeout: the request's body did not arrive within
// Limits.ReadTimeout. 408.
var ErrRequestTimeout = errors.New("gateway: request body read timeout")

// BodyError is the error a frontend reports for a failed body read: a
// deadline is a request timeout, anything else a malformed request.
func BodyError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrRequestTimeout
	}
	return errors.Join(ErrBadRequest, err)
}
