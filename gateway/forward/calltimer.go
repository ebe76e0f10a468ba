package forward

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// callTimer is a gRPC call's one timer and the end of its upstream
// request. It aborts the call (closes abort: the node's stream is reset,
// the answer's reads fail) at the earliest of the route's total deadline
// and the limit of the phase under way: the first byte of an attempt's
// answer, or Idle after the answer's last read. One runtime timer per call, moved only
// when a limit comes earlier than where it is set: a read pushes the idle
// limit later without touching the timer, which, when it fires early,
// sets itself again for what is left (three timers, one re-armed on every
// read, had been 8 % of a gRPC call's CPU).
//
// The abort channel takes the place of a context derived from the
// client's for each call (about 5 % of a gRPC call's CPU): the client
// going away still cancels the request through the client's context.
//
// A limit further away than armSoon is not given to the runtime at once
// when the call is watched (deferFar): the watchdog arms it (armDeferred)
// once the call has lasted, and most calls end long before. Timers set
// and stopped on every call had been 3 % of a gRPC call's CPU, with the
// default limits (300 s to the first byte, 60 s idle, 600 s in all) that
// never fire.
//
// It is per call, not kept in the pooled Exchange: it may fire as the
// call ends, and then touches only itself.
type callTimer struct {
	start time.Time // the monotonic base of every instant below (ns since start)
	abort chan struct{}
	ended atomic.Int32 // 0 open; endedByCall or endedByTimeout once abort closed
	total int64        // the total deadline; never if none
	phase atomic.Int64 // the phase's limit; 0 if none (reads store it without mu)

	mu       sync.Mutex
	t        *time.Timer // nil until a limit is set
	armed    int64       // when t fires; never if it is not set
	stopped  bool
	deferFar bool // a far limit waits for the watchdog (armDeferred)
	deferred bool // one does
}

// armSoon: a limit closer than this is armed at once. The watchdog first
// visits a call between watchAfter and watchAfter+watchEvery after it
// began; one more period is the margin.
const armSoon = watchAfter + 2*watchEvery

const never = math.MaxInt64

// How a call ended (callTimer.ended).
const (
	endedByCall    = 1
	endedByTimeout = 2
)

// newCallTimer starts a call's timer, its instants counted from start
// (the request's arrival; zero: now); deferFar when the watchdog visits
// the call (Exchange.check arms far limits).
func newCallTimer(start time.Time, total time.Duration, deferFar bool) *callTimer {
	if start.IsZero() {
		start = time.Now()
	}
	c := &callTimer{start: start, abort: make(chan struct{}), total: never, armed: never, deferFar: deferFar}
	if total > 0 {
		c.total = int64(total)
		c.mu.Lock()
		c.armLocked(c.now())
		c.mu.Unlock()
	}
	return c
}

func (c *callTimer) now() int64 { return int64(time.Since(c.start)) }

// dueLocked is the earliest limit.
func (c *callTimer) dueLocked() int64 {
	if p := c.phase.Load(); p > 0 && p < c.total {
		return p
	}
	return c.total
}

// armLocked sets the timer for the earliest limit if that comes before
// where it is set.
func (c *callTimer) armLocked(now int64) {
	due := c.dueLocked()
	if due >= c.armed || c.stopped {
		return
	}
	if c.deferFar && due-now > int64(armSoon) {
		c.deferred = true
		return
	}
	c.armed = due
	if c.t == nil {
		c.t = time.AfterFunc(time.Duration(due-now), c.fire)
	} else {
		c.t.Reset(time.Duration(due - now))
	}
}

// armDeferred arms the limit left to the watchdog, if any; from then on
// every limit is armed at once.
func (c *callTimer) armDeferred() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deferFar = false
	if c.deferred {
		c.deferred = false
		c.armLocked(c.now())
	}
}

// setPhase starts a phase limited to d from now (0: none).
func (c *callTimer) setPhase(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		c.phase.Store(0)
		if c.total < c.armed && !c.stopped { // the total is the limit now, and comes first
			c.armLocked(c.now())
		}
		return
	}
	now := c.now()
	c.phase.Store(now + int64(d))
	c.armLocked(now)
}

// touch pushes the phase's limit to d from now: a read of the answer, in
// the idle phase. It never moves the timer (the limit only gets later).
func (c *callTimer) touch(d time.Duration) { c.phase.Store(c.now() + int64(d)) }

// fire runs when the timer expires: it cancels the call if a limit
// passed, else sets the timer for the earliest limit.
func (c *callTimer) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.armed = never
	now, due := c.now(), c.dueLocked()
	if due > now {
		c.armLocked(now)
		return
	}
	c.stopped = true
	c.end(endedByTimeout)
}

// end closes abort, once; how says why.
func (c *callTimer) end(how int32) {
	if c.ended.CompareAndSwap(0, how) {
		close(c.abort)
	}
}

// aborted reports whether the call's upstream request was ended.
func (c *callTimer) aborted() bool { return c.ended.Load() != 0 }

// timedOut reports whether a limit ended the call.
func (c *callTimer) timedOut() bool { return c.ended.Load() == endedByTimeout }

// stop ends the timer and the upstream request: the call is over.
func (c *callTimer) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.t != nil {
		c.t.Stop()
	}
	c.mu.Unlock()
	c.end(endedByCall)
}
