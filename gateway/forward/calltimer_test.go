package forward

import (
	"testing"
	"time"
)

func newTestTimer(total time.Duration) *callTimer { return newCallTimer(time.Time{}, total, false) }

// advance moves the timer's clock d forward: its instants are offsets
// from start.
func (c *callTimer) advance(d time.Duration) {
	c.mu.Lock()
	c.start = c.start.Add(-d)
	c.mu.Unlock()
}

// armedNear reports whether the timer is set for want from start, give
// or take the second the test takes.
func (c *callTimer) armedNear(want time.Duration) bool {
	return c.armed >= int64(want) && c.armed < int64(want+time.Second)
}

func waitTimedOut(t *testing.T, c *callTimer, what string) {
	t.Helper()
	select {
	case <-c.abort:
		if !c.timedOut() {
			t.Fatalf("%s: aborted, but not by a limit", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not aborted within 10 s", what)
	}
}

func TestCallTimerTotalAndFirstByteFire(t *testing.T) {
	c := newTestTimer(20 * time.Millisecond)
	defer c.stop()
	waitTimedOut(t, c, "total 20 ms")

	c = newTestTimer(time.Hour)
	defer c.stop()
	c.setPhase(20 * time.Millisecond)
	waitTimedOut(t, c, "first byte 20 ms under a total of 1 h")
}

// TestCallTimerIdleIsLazy checks that reads push the idle limit without
// moving the timer, that an early fire sets the timer for what is left,
// and that the call is cancelled once the limit really passed.
func TestCallTimerIdleIsLazy(t *testing.T) {
	c := newTestTimer(0)
	defer c.stop()
	c.setPhase(time.Hour) // first byte
	c.setPhase(0)         // answered: the timer stays where it is
	if !c.armedNear(time.Hour) {
		t.Fatalf("after the answer the timer is at %v, want where it was (1h)", time.Duration(c.armed))
	}
	c.setPhase(time.Minute) // idle: earlier, so the timer moves
	if !c.armedNear(time.Minute) {
		t.Fatalf("idle phase: timer at %v, want 1m", time.Duration(c.armed))
	}
	c.advance(50 * time.Second)
	c.touch(time.Minute) // a read: the limit is now 1m50s, the timer stays at 1m
	if !c.armedNear(time.Minute) {
		t.Fatalf("a read moved the timer to %v", time.Duration(c.armed))
	}
	c.advance(20 * time.Second) // 1m10s: the timer's instant passed, the limit did not
	c.fire()
	if c.aborted() {
		t.Fatal("aborted 20 s after the last read, with a 1 min idle limit")
	}
	if !c.armedNear(110 * time.Second) {
		t.Fatalf("after an early fire the timer is at %v, want the limit 1m50s", time.Duration(c.armed))
	}
	c.advance(time.Minute)
	c.fire()
	waitTimedOut(t, c, "1 min after the last read")
}

// TestCallTimerStopEndsTheCall checks that the call's end aborts its
// request, not as a timeout, and that a late fire changes nothing.
func TestCallTimerStopEndsTheCall(t *testing.T) {
	c := newTestTimer(time.Minute)
	c.stop()
	if !c.aborted() || c.timedOut() {
		t.Fatalf("after stop: aborted %v, timed out %v; want aborted, not timed out", c.aborted(), c.timedOut())
	}
	c.advance(time.Hour)
	c.fire() // as if it fired while the call ended
	if c.timedOut() {
		t.Fatal("a stopped timer timed the call out")
	}
	c.setPhase(time.Nanosecond) // a late phase change sets nothing
	if !c.armedNear(time.Minute) {
		t.Fatalf("timer at %v after stop", time.Duration(c.armed))
	}
}

func TestCallTimerNoLimitNoTimer(t *testing.T) {
	c := newTestTimer(0)
	c.setPhase(0)
	if c.t != nil {
		t.Fatal("a timer with no limit was started")
	}
	c.stop()
}

// TestCallTimerDefersFarLimits: a watched call's timer gives the runtime
// no timer for limits beyond armSoon (the watchdog arms them) but arms a
// near one at once; once the watchdog armed it, every limit is armed at
// once, and a deferred limit that passed fires.
func TestCallTimerDefersFarLimits(t *testing.T) {
	c := newCallTimer(time.Time{}, time.Hour, true)
	defer c.stop()
	c.setPhase(5 * time.Minute) // first byte
	if c.t != nil || !c.deferred {
		t.Fatalf("far limits: runtime timer %v, deferred %v; want none, deferred", c.t, c.deferred)
	}
	c.setPhase(20 * time.Millisecond) // a near limit
	waitTimedOut(t, c, "a near limit of a watched call")

	c = newCallTimer(time.Time{}, time.Hour, true)
	defer c.stop()
	c.armDeferred()
	if !c.armedNear(time.Hour) || c.deferFar {
		t.Fatalf("after the watchdog: armed at %v, deferFar %v; want 1h, false", time.Duration(c.armed), c.deferFar)
	}
	c.setPhase(5 * time.Minute)
	if !c.armedNear(5 * time.Minute) {
		t.Fatalf("a limit after the watchdog's visit: armed at %v, want 5m", time.Duration(c.armed))
	}

	c = newCallTimer(time.Time{}, time.Second, true)
	defer c.stop()
	c.advance(2 * time.Second) // the total passed while deferred
	c.armDeferred()
	waitTimedOut(t, c, "a deferred limit that passed")
}
