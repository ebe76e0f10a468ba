package flow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of Enter. The gateway answers both with 429 (the route is busy;
// Retry-After from Queue.RetryAfter) or 503, as it answers a saturated
// route today.
var (
	// ErrQueueFull: the route's queue holds Config.MaxQueued requests and
	// none of a lower class could make room (or this request was
	// displaced by a more urgent one).
	ErrQueueFull = errors.New("flow: route queue is full")
	// ErrQueueTimeout: the request's deadline passed while it waited.
	ErrQueueTimeout = errors.New("flow: request timed out in the route queue")
)

// Config configures a Queue. The zero value is usable.
type Config struct {
	// MaxQueued bounds the requests waiting at once. Default
	// DefaultMaxQueued.
	MaxQueued int `yaml:"max_queued"`
	// Quantum is the cost units a tenant may take per turn of the round
	// robin within its class. Default 1 (with unit costs: one request per
	// tenant per turn).
	Quantum int `yaml:"quantum"`
	// Reserve is the share of the route's slots that batch requests leave
	// free for interactive ones: a batch request starts only while fewer
	// than BatchLimit(limit, Reserve) requests of any class are in flight
	// (trunk reservation), so an interactive request finds a slot at once
	// even while a batch backlog waits, on the nodes the pick prefers
	// rather than wherever a slot happens to free, and a batch backlog
	// never runs the nodes at their limit. Default 0.2; 0 to 0.9.
	// Negative: none (batch may take every slot).
	Reserve float64 `yaml:"reserve"`
	// Observe, if set, is called once for every request that found the
	// route full: when its wait ends, with its class, how long it waited
	// and how it left (Dispatched, TimedOut, Cancelled, Displaced), or at
	// once, with waited 0, when the queue turned it away on arrival
	// (Rejected, or TimedOut when its deadline had already passed). It
	// must not block. With Queue.Depth it gives the metrics per class:
	// queue depth, wait time, outcomes (gateway/telemetry).
	Observe func(c Class, waited time.Duration, o Outcome) `yaml:"-"`
}

// The defaults a route's queue ships with: Config's (applied by New) and
// the deadlines by class (applied by gateway/config's queue.timeout and
// queue.batch_timeout). bench/affinity's burst scenario runs with them.
const (
	DefaultMaxQueued = 1024
	DefaultReserve   = 0.2
	// DefaultTimeout is how long an interactive request waits for a slot
	// when neither its client nor its route says otherwise: a person or an
	// agent is waiting for the first token, and a quick 503 with
	// Retry-After serves them better than a long silence.
	DefaultTimeout = 30 * time.Second
	// DefaultBatchTimeout is the same for batch requests: nobody watches
	// them, and a batch job waits out a burst rather than failing and
	// being resubmitted into it (issue 14's burst target: batch absorbs
	// the wait, nothing is lost; bench/affinity's burst scenario, twice
	// capacity for 30 s, loses nothing with it). It stays at half of the
	// OpenAI Python SDK's default client timeout (600 s, openai/openai-python
	// src/openai/_constants.py), so that a request that waited the whole
	// time still has minutes to be served before its client gives up.
	DefaultBatchTimeout = 5 * time.Minute
)

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.MaxQueued < 0 || c.MaxQueued > 1<<24:
		return fmt.Errorf("flow: max_queued %d: must be 1..%d (0 for the default %d)", c.MaxQueued, 1<<24, DefaultMaxQueued)
	case c.Quantum < 0:
		return fmt.Errorf("flow: quantum %d: must be >= 1 (0 for the default 1)", c.Quantum)
	case c.Reserve > 0.9 || c.Reserve != c.Reserve:
		return fmt.Errorf("flow: reserve %v: must be at most 0.9 (0 for the default 0.2, negative for none)", c.Reserve)
	}
	return nil
}

// BatchLimit returns the requests in flight (of any class) below which a
// batch request may start, of limit slots with the given reserve: limit
// less the reserved share, at least one while limit is positive.
func BatchLimit(limit int, reserve float64) int {
	if reserve <= 0 || limit <= 0 {
		return limit
	}
	return max(1, int(float64(limit)*(1-reserve)))
}

// Request describes one request to Enter.
type Request struct {
	// Class is its priority class.
	Class Class
	// Tenant names whom it is fair to (an API key's tenant); "" is a
	// tenant like any other.
	Tenant string
	// Deadline is when it stops waiting (the client's timeout or the
	// route's default); zero: only the context ends the wait.
	Deadline time.Time
	// Cost is its share of its tenant's turns (1 when 0): for example its
	// expected tokens, so that fairness counts work rather than requests.
	Cost int
}

// Queue is one route's admission: requests in flight against a limit, and
// a bounded fair queue for the rest. Create it with New.
type Queue struct {
	// state holds the requests in flight (low 32 bits) and waiting (high
	// 32 bits) in one word, so the lock-free paths see both at once. The
	// waiting count changes only under mu.
	state atomic.Uint64
	limit atomic.Int64

	maxQueued int
	reserve   float64
	observe   func(Class, time.Duration, Outcome)
	now       func() time.Time

	mu    sync.Mutex
	fair  *Fair[*waiter] // guarded by mu
	depth [NumClasses]atomic.Int64
	wait  atomic.Int64 // EWMA of granted waits, ns

	waiters sync.Pool

	// queued, if set (tests), is called with mu held after a request is
	// queued.
	queued func()
}

const waitingOne = 1 << 32

// waiter is a queued request's rendezvous. Its fields other than ch and
// timer are guarded by the queue's mu.
type waiter struct {
	ch     chan struct{} // one signal: granted or displaced
	timer  *time.Timer
	class  Class
	item   *Item[*waiter]
	result error // set with the signal: nil (granted) or ErrQueueFull
	done   bool  // the signal was sent
}

// New returns a queue with limit 0: call SetLimit before the first Enter.
func New(cfg Config) (*Queue, error) {
	return newQueue(cfg, time.Now)
}

func newQueue(cfg Config, now func() time.Time) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.Reserve == 0 {
		cfg.Reserve = DefaultReserve
	}
	q := &Queue{maxQueued: cfg.MaxQueued, reserve: cfg.Reserve, observe: cfg.Observe, now: now, fair: NewFair[*waiter](cfg.Quantum)}
	q.waiters.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return &waiter{ch: make(chan struct{}, 1), timer: t}
	}
	return q, nil
}

// SetLimit sets how many requests may be in flight: the sum of the
// per-node limits of the route's eligible nodes. Raising it dispatches
// waiters at once; lowering it lets in-flight requests finish.
func (q *Queue) SetLimit(n int) {
	q.limit.Store(int64(max(n, 0)))
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dispatchLocked()
}

// dispatchLocked grants free slots to waiters while there are both.
func (q *Queue) dispatchLocked() {
	for {
		s := q.state.Load()
		inflight := int64(uint32(s))
		if inflight >= q.limit.Load() || !q.grantableLocked(inflight) {
			return
		}
		// One more in flight, one fewer waiting.
		if q.state.CompareAndSwap(s, s+1-waitingOne) {
			q.grantLocked()
		}
	}
}

// grantableLocked reports whether the next waiter may have a free slot,
// inflight being the requests holding one: an interactive waiter always,
// a batch one while inflight is below the batch limit.
func (q *Queue) grantableLocked(inflight int64) bool {
	if q.fair.LenClass(Interactive) > 0 {
		return true
	}
	return q.fair.Len() > 0 && inflight < q.batchLimit()
}

// Limit returns the slots: how many requests may be in flight before
// others wait (SetLimit).
func (q *Queue) Limit() int { return int(q.limit.Load()) }

// batchLimit is BatchLimit of the current limit.
func (q *Queue) batchLimit() int64 { return int64(BatchLimit(int(q.limit.Load()), q.reserve)) }

// InFlight returns the requests holding a slot.
func (q *Queue) InFlight() int { return int(uint32(q.state.Load())) }

// Depth returns the requests of class c waiting.
func (q *Queue) Depth(c Class) int {
	if c >= NumClasses {
		return 0
	}
	return int(q.depth[c].Load())
}

// RetryAfter suggests a Retry-After for a request turned away: the recent
// wait of those that got a slot, rounded up to a second, at least 1 s.
func (q *Queue) RetryAfter() time.Duration {
	d := time.Duration(q.wait.Load())
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// Enter takes a slot for a request, waiting in the queue if every slot is
// taken (for a batch request, if the batch limit of slots is taken). On nil the
// caller holds a slot and must call Leave with the request's class
// exactly once. It returns ErrQueueFull, ErrQueueTimeout or ctx's error
// otherwise.
func (q *Queue) Enter(ctx context.Context, r Request) error {
	// Fast path for interactive requests: nothing waits and there is
	// room. Batch requests take the lock: their count is kept exact.
	for r.Class == Interactive {
		s := q.state.Load()
		if s>>32 != 0 || int64(uint32(s)) >= q.limit.Load() {
			break
		}
		if q.state.CompareAndSwap(s, s+1) {
			return nil
		}
	}
	return q.enterSlow(ctx, r)
}

func (q *Queue) enterSlow(ctx context.Context, r Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := r.Class
	if c >= NumClasses {
		c = NumClasses - 1
	}
	start := q.now()
	if !r.Deadline.IsZero() && !start.Before(r.Deadline) {
		q.report(c, 0, TimedOut)
		return ErrQueueTimeout
	}
	q.mu.Lock()
	// Room may have appeared; still, nobody jumps the queue: an
	// interactive request goes ahead only of batch waiters, a batch one of
	// nobody, and only while the requests in flight are below the batch
	// limit.
	ahead, room := q.fair.LenClass(Interactive), q.limit.Load()
	if c == Batch {
		ahead, room = q.fair.Len(), q.batchLimit()
	}
	for ahead == 0 {
		s := q.state.Load()
		if int64(uint32(s)) >= room {
			break
		}
		if q.state.CompareAndSwap(s, s+1) {
			q.mu.Unlock()
			return nil
		}
	}
	if q.fair.Len() >= q.maxQueued {
		victim := q.fair.Newest(c)
		if victim == nil {
			q.mu.Unlock()
			q.report(c, 0, Rejected)
			return ErrQueueFull
		}
		vw := victim.Value
		q.removeLocked(vw)
		vw.result, vw.done = ErrQueueFull, true
		vw.ch <- struct{}{}
	}
	w := q.waiters.Get().(*waiter)
	w.result, w.done, w.class = nil, false, c
	w.item = q.fair.Push(c, r.Tenant, r.Cost, w)
	q.state.Add(waitingOne)
	q.depth[c].Add(1)
	// A Leave that ran its lock-free path between our look at the counts
	// and our joining the queue saw nobody waiting and freed its slot
	// without passing it on: take such slots now. (Both counts share one
	// word: Leave's lock-free path frees a slot only while nobody waits.)
	q.dispatchLocked()
	if q.queued != nil && !w.done {
		q.queued()
	}
	q.mu.Unlock()

	var expired <-chan time.Time
	if !r.Deadline.IsZero() {
		w.timer.Reset(r.Deadline.Sub(start))
		expired = w.timer.C
	}
	var err error
	select {
	case <-w.ch:
		q.mu.Lock()
		err = w.result
		q.mu.Unlock()
	case <-expired:
		err = q.giveUp(w, ErrQueueTimeout)
	case <-ctx.Done():
		err = q.giveUp(w, ctx.Err())
	}
	w.timer.Stop()
	waited := q.now().Sub(start)
	if err == nil {
		// EWMA with weight 1/8 of the waits of granted requests.
		old := q.wait.Load()
		q.wait.Store(old + (int64(waited)-old)/8)
	}
	w.item = nil
	q.waiters.Put(w)
	q.report(c, waited, outcomeOf(err))
	return err
}

// report passes one request's wait to Config.Observe.
func (q *Queue) report(c Class, waited time.Duration, o Outcome) {
	if q.observe != nil {
		q.observe(c, waited, o)
	}
}

// giveUp ends a wait that timed out or was cancelled. If the slot was
// granted (or the waiter displaced) in the meantime, that outcome stands,
// except that a cancelled request gives its slot back.
func (q *Queue) giveUp(w *waiter, reason error) error {
	q.mu.Lock()
	if !w.done {
		q.removeLocked(w)
		q.mu.Unlock()
		return reason
	}
	result := w.result
	q.mu.Unlock()
	<-w.ch // consume the signal so the waiter can be reused
	if result == nil && reason != ErrQueueTimeout {
		q.Leave(w.class)
		return reason
	}
	return result
}

// removeLocked takes a waiting request out of the queue.
func (q *Queue) removeLocked(w *waiter) {
	c := w.item.class
	if q.fair.Remove(w.item) {
		q.state.Add(math.MaxUint64 - waitingOne + 1) // one fewer waiting
		q.depth[c].Add(-1)
	}
}

// grantLocked gives the slot just counted in flight to the next waiter;
// the caller moved one from waiting to in flight.
func (q *Queue) grantLocked() {
	w, c, ok := q.fair.Pop()
	if !ok {
		panic("BUG: flow: a slot granted with nobody waiting")
	}
	q.depth[c].Add(-1)
	w.result, w.done = nil, true
	w.ch <- struct{}{}
}

// Leave returns a slot taken by Enter for a request of class c; the next
// waiter, if any may have it, gets it at once. (Slots are counted for all
// classes together; c documents the caller's request.)
func (q *Queue) Leave(c Class) {
	_ = c
	for {
		s := q.state.Load()
		if uint32(s) == 0 {
			panic("BUG: flow: Leave without Enter")
		}
		if s>>32 != 0 {
			break
		}
		if q.state.CompareAndSwap(s, s-1) {
			return
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		s := q.state.Load()
		if s>>32 != 0 && int64(uint32(s)) <= q.limit.Load() && q.grantableLocked(int64(uint32(s))-1) {
			// The slot passes to the next waiter: in flight unchanged,
			// one fewer waiting.
			if q.state.CompareAndSwap(s, s-waitingOne) {
				q.grantLocked()
				return
			}
			continue
		}
		if q.state.CompareAndSwap(s, s-1) {
			return
		}
	}
}
