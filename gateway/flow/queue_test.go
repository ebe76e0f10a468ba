package flow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testQueue returns a queue with limit slots whose queued hook reports
// each request that starts waiting on the returned channel.
func testQueue(t *testing.T, cfg Config, limit int) (*Queue, chan struct{}) {
	t.Helper()
	q, err := newQueue(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	q.SetLimit(limit)
	queued := make(chan struct{}, 1024)
	q.queued = func() { queued <- struct{}{} }
	return q, queued
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// enterAsync starts Enter in a goroutine, waits until it is queued, and
// returns the channel its result arrives on.
func enterAsync(t *testing.T, ctx context.Context, q *Queue, queued chan struct{}, r Request) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- q.Enter(ctx, r) }()
	select {
	case <-queued:
	case <-ctx.Done():
		t.Fatal("request never queued")
	}
	return done
}

func result(t *testing.T, ctx context.Context, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatal("no result")
		return nil
	}
}

func TestQueueFastPathAndHandOff(t *testing.T) {
	ctx := testCtx(t)
	q, queued := testQueue(t, Config{}, 2)
	for i := 0; i < 2; i++ {
		if err := q.Enter(ctx, Request{}); err != nil {
			t.Fatal(err)
		}
	}
	done := enterAsync(t, ctx, q, queued, Request{Tenant: "a"})
	if q.Depth(Interactive) != 1 || q.InFlight() != 2 {
		t.Fatalf("depth %d in flight %d, want 1 and 2", q.Depth(Interactive), q.InFlight())
	}
	q.Leave(Interactive)
	if err := result(t, ctx, done); err != nil {
		t.Fatal(err)
	}
	if q.Depth(Interactive) != 0 || q.InFlight() != 2 {
		t.Fatalf("after the hand-off: depth %d in flight %d", q.Depth(Interactive), q.InFlight())
	}
	q.Leave(Interactive)
	q.Leave(Interactive)
	if q.InFlight() != 0 {
		t.Fatalf("in flight %d at the end", q.InFlight())
	}
}

// Freed slots go to interactive waiters first, and between the tenants of
// a class in turn.
func TestQueuePriorityAndFairness(t *testing.T) {
	ctx := testCtx(t)
	q, queued := testQueue(t, Config{}, 1)
	if err := q.Enter(ctx, Request{}); err != nil {
		t.Fatal(err)
	}
	type waiting struct {
		name string
		done chan error
	}
	var ws []waiting
	for _, r := range []struct {
		name   string
		class  Class
		tenant string
	}{
		{"batch-a1", Batch, "a"}, {"batch-a2", Batch, "a"}, {"batch-b1", Batch, "b"},
		{"inter-x1", Interactive, "x"}, {"inter-x2", Interactive, "x"}, {"inter-y1", Interactive, "y"},
	} {
		ws = append(ws, waiting{r.name, enterAsync(t, ctx, q, queued, Request{Class: r.class, Tenant: r.tenant})})
	}
	var order []string
	for k := range ws {
		c := Interactive
		if k > 3 {
			c = Batch
		}
		q.Leave(c) // the holder's slot passes on
		got := ""
		for got == "" {
			for _, w := range ws {
				select {
				case err := <-w.done:
					if err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					got = w.name
				default:
				}
			}
		}
		order = append(order, got)
	}
	want := "[inter-x1 inter-y1 inter-x2 batch-a1 batch-b1 batch-a2]"
	if fmt.Sprint(order) != want {
		t.Fatalf("grant order %v, want %s", order, want)
	}
	q.Leave(Batch)
}

func TestQueueDeadlineAndCancel(t *testing.T) {
	ctx := testCtx(t)
	var observed []string
	var mu sync.Mutex
	q, queued := testQueue(t, Config{Observe: func(c Class, waited time.Duration, o Outcome) {
		mu.Lock()
		observed = append(observed, fmt.Sprintf("%s/%s/waited=%t", c, o, waited > 0))
		mu.Unlock()
	}}, 1)
	if err := q.Enter(ctx, Request{}); err != nil {
		t.Fatal(err)
	}
	// A deadline already past: turned away without queueing.
	if err := q.Enter(ctx, Request{Deadline: time.Now().Add(-time.Second)}); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("past deadline: %v", err)
	}
	// A short deadline: it waits, then times out.
	done := enterAsync(t, ctx, q, queued, Request{Class: Batch, Deadline: time.Now().Add(20 * time.Millisecond)})
	if err := result(t, ctx, done); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	// A client that goes away.
	cctx, cancel := context.WithCancel(ctx)
	done = enterAsync(t, cctx, q, queued, Request{})
	cancel()
	if err := result(t, ctx, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if q.Depth(Interactive) != 0 || q.Depth(Batch) != 0 || q.InFlight() != 1 {
		t.Fatalf("depths %d/%d in flight %d after both left", q.Depth(Interactive), q.Depth(Batch), q.InFlight())
	}
	q.Leave(Interactive)
	if q.InFlight() != 0 {
		t.Fatal("slot leaked")
	}
	mu.Lock()
	defer mu.Unlock()
	// The past deadline is reported at once, without a wait.
	want := "[interactive/timeout/waited=false batch/timeout/waited=true interactive/cancelled/waited=true]"
	if fmt.Sprint(observed) != want {
		t.Fatalf("observed %v, want %s", observed, want)
	}
}

// A full queue turns batch away, and an interactive arrival displaces the
// newest batch waiter.
func TestQueueFullDisplacesBatch(t *testing.T) {
	ctx := testCtx(t)
	var mu sync.Mutex
	outcomes := map[string]int{}
	q, queued := testQueue(t, Config{MaxQueued: 2, Observe: func(c Class, _ time.Duration, o Outcome) {
		mu.Lock()
		outcomes[c.String()+"/"+o.String()]++
		mu.Unlock()
	}}, 1)
	if err := q.Enter(ctx, Request{}); err != nil {
		t.Fatal(err)
	}
	b1 := enterAsync(t, ctx, q, queued, Request{Class: Batch, Tenant: "a"})
	b2 := enterAsync(t, ctx, q, queued, Request{Class: Batch, Tenant: "a"})
	if err := q.Enter(ctx, Request{Class: Batch}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third batch: %v, want ErrQueueFull", err)
	}
	in := enterAsync(t, ctx, q, queued, Request{Class: Interactive})
	if err := result(t, ctx, b2); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("displaced batch: %v, want ErrQueueFull", err)
	}
	q.Leave(Interactive)
	if err := result(t, ctx, in); err != nil {
		t.Fatal(err)
	}
	q.Leave(Interactive)
	if err := result(t, ctx, b1); err != nil {
		t.Fatal(err)
	}
	q.Leave(Batch)
	if q.InFlight() != 0 || q.Depth(Batch) != 0 {
		t.Fatal("not empty at the end")
	}
	// The first request found room: not reported. The third batch was
	// rejected on arrival, the second displaced; the others waited and
	// were dispatched.
	mu.Lock()
	got := fmt.Sprint(outcomes)
	mu.Unlock()
	if want := "map[batch/dispatched:1 batch/displaced:1 batch/rejected:1 interactive/dispatched:1]"; got != want {
		t.Fatalf("outcomes %s, want %s", got, want)
	}
	// Full of interactive: another interactive request is turned away.
	q2, queued2 := testQueue(t, Config{MaxQueued: 1}, 0)
	i1 := enterAsync(t, ctx, q2, queued2, Request{})
	if err := q2.Enter(ctx, Request{}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full of interactive: %v", err)
	}
	q2.SetLimit(1) // raising the limit dispatches the waiter
	if err := result(t, ctx, i1); err != nil {
		t.Fatal(err)
	}
	q2.Leave(Interactive)
}

// Many requests enter and leave at once: never more in flight than the
// limit, everyone served, nothing left over. Run under -race.
func TestQueueConcurrent(t *testing.T) {
	ctx := testCtx(t)
	const limit, workers, each = 4, 16, 200
	q, err := New(Config{MaxQueued: workers})
	if err != nil {
		t.Fatal(err)
	}
	q.SetLimit(limit)
	var inFlight, peak atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < each; i++ {
				r := Request{Class: Class(rng.IntN(2)), Tenant: fmt.Sprint(rng.IntN(3))}
				if err := q.Enter(ctx, r); err != nil {
					t.Error(err)
					return
				}
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				inFlight.Add(-1)
				q.Leave(r.Class)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("peak %d in flight over the limit %d", p, limit)
	}
	if q.InFlight() != 0 || q.Depth(Interactive)+q.Depth(Batch) != 0 {
		t.Fatalf("left: in flight %d, waiting %d", q.InFlight(), q.Depth(Interactive)+q.Depth(Batch))
	}
}

// Trunk reservation: a batch request starts only while fewer than the
// batch limit (1 − Reserve of the slots) are in flight, of any class. The
// reserve stays free for interactive requests, which get a slot at once
// while batch waits; and with interactive requests holding more than the
// reserve, a batch backlog still leaves the reserve free rather than
// filling the route to its limit.
func TestQueueReserve(t *testing.T) {
	ctx := testCtx(t)
	q, queued := testQueue(t, Config{Reserve: 0.2}, 10) // batch starts below 8
	for i := 0; i < 8; i++ {
		if err := q.Enter(ctx, Request{Class: Batch}); err != nil {
			t.Fatal(err)
		}
	}
	b9 := enterAsync(t, ctx, q, queued, Request{Class: Batch})
	for i := 0; i < 2; i++ {
		if err := q.Enter(ctx, Request{Class: Interactive}); err != nil {
			t.Fatal(err)
		}
	}
	if q.InFlight() != 10 || q.Depth(Batch) != 1 {
		t.Fatalf("in flight %d, batch waiting %d; want 10 and 1", q.InFlight(), q.Depth(Batch))
	}
	stillWaits := func(why string) {
		t.Helper()
		select {
		case err := <-b9:
			t.Fatalf("%s: batch got a slot (%v) with %d in flight", why, err, q.InFlight())
		default:
		}
	}
	// An interactive request leaves: its slot is not batch's to take.
	q.Leave(Interactive)
	stillWaits("an interactive request left")
	if err := q.Enter(ctx, Request{Class: Interactive}); err != nil {
		t.Fatal(err)
	}
	// A batch request leaves: 9 in flight, still not below 8.
	q.Leave(Batch)
	stillWaits("a batch request left, 9 in flight")
	q.Leave(Interactive)
	stillWaits("8 in flight")
	// 7 in flight: the waiting batch request starts.
	q.Leave(Interactive)
	if err := result(t, ctx, b9); err != nil {
		t.Fatal(err)
	}
	if q.InFlight() != 8 {
		t.Fatalf("in flight %d, want 8", q.InFlight())
	}
	for i := 0; i < 8; i++ {
		q.Leave(Batch)
	}
	if q.InFlight() != 0 {
		t.Fatalf("in flight %d at the end", q.InFlight())
	}
	// Five interactive requests hold slots; a backlog of batch takes only
	// three: two slots stay free.
	for i := 0; i < 5; i++ {
		if err := q.Enter(ctx, Request{Class: Interactive}); err != nil {
			t.Fatal(err)
		}
	}
	var backlog []chan error
	for i := 0; i < 3; i++ {
		if err := q.Enter(ctx, Request{Class: Batch}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		backlog = append(backlog, enterAsync(t, ctx, q, queued, Request{Class: Batch}))
	}
	if q.InFlight() != 8 || q.Depth(Batch) != 4 {
		t.Fatalf("in flight %d, batch waiting %d; want 8 and 4", q.InFlight(), q.Depth(Batch))
	}
	for i := 0; i < 2; i++ {
		if err := q.Enter(ctx, Request{Class: Interactive}); err != nil {
			t.Fatalf("interactive with a batch backlog: %v", err)
		}
	}
	// Everything interactive leaves: the backlog runs, up to 8 in flight.
	for i := 0; i < 7; i++ {
		q.Leave(Interactive)
	}
	for _, b := range backlog {
		if err := result(t, ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if q.InFlight() != 7 {
		t.Fatalf("in flight %d, want the 7 batch requests", q.InFlight())
	}
	for i := 0; i < 7; i++ {
		q.Leave(Batch)
	}
	for _, c := range []struct {
		limit int
		r     float64
		want  int
	}{{10, 0.2, 8}, {1, 0.2, 1}, {0, 0.2, 0}, {10, -1, 10}, {100, 0.25, 75}} {
		if got := BatchLimit(c.limit, c.r); got != c.want {
			t.Errorf("BatchLimit(%d, %v) = %d, want %d", c.limit, c.r, got, c.want)
		}
	}
}

// Batch requests alone, more of them than batch may hold slots: every
// Leave's slot must reach a waiter (a lost wake-up here once left every
// goroutine waiting). Run under -race.
func TestQueueBatchOnlyNoLostWakeup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := New(Config{MaxQueued: 64, Reserve: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	q.SetLimit(4) // batch may hold 3
	var wg sync.WaitGroup
	var peak, in atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				if err := q.Enter(ctx, Request{Class: Batch, Tenant: "t"}); err != nil {
					t.Errorf("enter: %v (a lost wake-up leaves waiters until the test's deadline)", err)
					return
				}
				n := in.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				in.Add(-1)
				q.Leave(Batch)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d batch requests held slots at once, over batch's 3", p)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{MaxQueued: -1}, {MaxQueued: 1 << 25}, {Quantum: -1}, {Reserve: 0.95}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	q, _ := testQueue(t, Config{}, 1)
	if got := q.RetryAfter(); got != time.Second {
		t.Fatalf("idle queue: %v, want 1s", got)
	}
	q.wait.Store(int64(2500 * time.Millisecond))
	if got := q.RetryAfter(); got != 3*time.Second {
		t.Fatalf("2.5 s waits: %v, want 3s", got)
	}
}
