package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// The first-byte record: what the forwarding core saw of a node's answers
// (issue 12), kept in atomics so that recording costs a request a few
// uncontended adds and no lock. The health checker's loop takes it once
// per evaluation (TakeFirstByte) and does the judging off the request
// path.

// epoch is the origin of the record's monotonic nanosecond stamps.
var epoch = time.Now()

// mono is the monotonic time since epoch.
func mono() int64 { return int64(time.Since(epoch)) }

// firstByte is a node's first-byte record. Every field is atomic.
type firstByte struct {
	_ [64]byte // keep the hot counters off the Node's read-mostly line

	// waiting counts the exchanges sent to the node whose answer has not
	// come yet (Do and H2 add one, ObserveFirstByte takes one away;
	// never below zero).
	waiting atomic.Int64
	// busySince is when waiting last rose from zero, answered when the
	// last answer came (monotonic ns).
	busySince atomic.Int64
	answered  atomic.Int64
	// Since the last TakeFirstByte: answers below 500 and their summed
	// time to first byte, and failures.
	ok     atomic.Uint64
	sumOK  atomic.Int64
	failed atomic.Uint64
	// cutoff: exchanges sent before it (monotonic ns) are not counted
	// (ForgetBefore).
	cutoff atomic.Int64

	_ [64]byte
}

// begin counts one exchange sent to the node.
func (f *firstByte) begin() {
	if f.waiting.Add(1) == 1 {
		f.busySince.Store(mono())
	}
}

// end takes one exchange off waiting, never below zero: a gRPC attempt
// that fails before it is sent is observed without having begun.
func (f *firstByte) end() {
	for {
		w := f.waiting.Load()
		if w <= 0 || f.waiting.CompareAndSwap(w, w-1) {
			return
		}
	}
}

// ObserveFirstByte records one exchange with the node, called by the
// forwarding core once per attempt, right after it returns: sent is when
// the attempt began, status the node's answer and err the attempt's
// error (status is then ignored). For a buffered HTTP/1.1 answer the
// "first byte" is the whole answer, which is what the core waits for.
//
// An answer below 500 counts as a success with its time to first byte; a
// 5xx or an error as a failure — except a full connection pool
// (ErrNoFreeConns) and an exchange aborted or cancelled by the gateway or
// the client (ErrAborted, context.Canceled), which say nothing of the
// node. Only an answer (err nil) counts as the node being heard from: a
// hung node's requests that clients abandon keep it silent.
//
// It returns the time since sent (one clock read for both), allocates
// nothing and takes no lock.
func (n *Node) ObserveFirstByte(sent time.Time, status int, err error) time.Duration {
	d := time.Since(sent)
	f := &n.fb
	f.end()
	at := sent.Sub(epoch)
	if err == nil {
		f.answered.Store(int64(at + d))
		if f.before(at) {
			return d
		}
		if status < 500 {
			f.ok.Add(1)
			f.sumOK.Add(int64(d))
		} else {
			f.failed.Add(1)
		}
		return d
	}
	if f.before(at) || errors.Is(err, ErrNoFreeConns) || errors.Is(err, ErrAborted) || errors.Is(err, context.Canceled) {
		return d
	}
	f.failed.Add(1)
	return d
}

// before reports whether an exchange sent at (since epoch) is older than
// the cutoff; zero is no cutoff.
func (f *firstByte) before(at time.Duration) bool {
	c := f.cutoff.Load()
	return c != 0 && int64(at) < c
}

// ForgetBefore makes the exchanges sent before t count no more in the
// record's successes, failures and times (they still end their wait and
// count as the node being heard from), and drops the counts not taken
// yet. The health checker calls it when a node comes back from an
// outage: requests stuck during it finish with the outage in their time
// to first byte, which says nothing of the node now.
func (n *Node) ForgetBefore(t time.Time) {
	f := &n.fb
	f.cutoff.Store(max(int64(t.Sub(epoch)), 1))
	f.ok.Store(0)
	f.sumOK.Store(0)
	f.failed.Store(0)
}

// FirstByteStats is what TakeFirstByte returns.
type FirstByteStats struct {
	// OK and Failed count the answers below 500 and the failures since
	// the last take; SumOK is the OK answers' summed time to first byte.
	OK, Failed uint64
	SumOK      time.Duration
	// Waiting is the exchanges sent and not answered yet; Silent is how
	// long the node has not answered while they wait: since its last
	// answer, or since the first of them was sent when it had nothing to
	// answer before (zero when nothing waits). It is a lower bound on how
	// long the oldest of them has waited, and grows without bound on a
	// hung node whatever its requests' timeouts.
	Waiting int64
	Silent  time.Duration
}

// TakeFirstByte returns the node's first-byte record and resets its
// counts (not Waiting). inflight is the node's in-flight count as the
// balancer sees it (exact, while Waiting is kept per exchange): Waiting is
// capped by it, and cleared when it is zero, so a miscount can never make
// an idle node look silent. Called by the health checker's loop.
func (n *Node) TakeFirstByte(now time.Time, inflight int64) FirstByteStats {
	f := &n.fb
	s := FirstByteStats{OK: f.ok.Swap(0), Failed: f.failed.Swap(0), SumOK: time.Duration(f.sumOK.Swap(0))}
	w := f.waiting.Load()
	if inflight <= 0 {
		if w > 0 {
			f.waiting.CompareAndSwap(w, 0)
		}
		return s
	}
	s.Waiting = min(w, inflight)
	if s.Waiting > 0 {
		last := max(f.busySince.Load(), f.answered.Load())
		s.Silent = max(now.Sub(epoch)-time.Duration(last), 0)
	}
	return s
}

// LastAnswer is when the node last answered an exchange (any status);
// zero if it never did.
func (n *Node) LastAnswer() time.Time {
	a := n.fb.answered.Load()
	if a == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(a))
}
