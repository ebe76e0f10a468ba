package shadow_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestBoundedUnderHangingShadow: with a shadow ten times slower that
// hangs half of the time, 20,000 offers never hold more than QueueSize
// copies, the excess is dropped and counted, every offer is accounted for,
// and the heap does not grow with the number of requests.
func TestBoundedUnderHangingShadow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	candidate := startSim(t, ctx, "candidate", 8)
	candidate.SetSlowdown(10)
	defer candidate.Fail(sim.ModeHealthy) // release hung requests before the node closes

	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.QueueSize = 8
	cfg.Concurrency = 2
	cfg.Timeout = 100 * time.Millisecond
	cfg.CloseTimeout = 2 * time.Second
	cfg.Compare.Fields = chatFields
	m, err := shadow.New(ctx, cfg, newSender(t, candidate.URL()))
	if err != nil {
		t.Fatal(err)
	}

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBodyString(`{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 800) + `"}]}`)
	primary := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(primary)
	primary.Header.SetContentType("application/json")
	primary.SetBodyString(`{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("x", 4000) + `"},"finish_reason":"stop"}],"usage":{"completion_tokens":8}}`)

	const n = 20000
	var heapAt2k uint64
	id := make([]byte, 0, 16)
	for i := 0; i < n; i++ {
		switch i % 4000 {
		case 0:
			candidate.Fail(sim.ModeHang)
		case 2000:
			candidate.Fail(sim.ModeHealthy)
		}
		if i == 2000 {
			heapAt2k = heapAfterGC()
		}
		id = strconv.AppendInt(id[:0], int64(i), 10)
		h := m.Offer(reqOf(req), id)
		if live := m.Live(); live > int64(cfg.QueueSize) {
			t.Fatalf("request %d: %d copies alive, bound %d", i, live, cfg.QueueSize)
		}
		finishResponse(h, primary, time.Millisecond)
		if i%500 == 0 {
			// Give the workers a moment so both drops and sends happen.
			waitFor(t, ctx, "a free slot", func() bool { return m.Live() < int64(cfg.QueueSize) })
		}
	}
	heapEnd := heapAfterGC()
	candidate.Fail(sim.ModeHealthy)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	t.Logf("offered %d mirrored %d dropped %d (queue full %d) errors %d (timeout %d); heap %d KiB after 2k, %d KiB after %d",
		st.Offered, st.Mirrored, st.Dropped(), st.DroppedQueueFull, st.Errors(), st.ErrorsTimeout, heapAt2k>>10, heapEnd>>10, n)
	if st.Offered != n || st.Offered != st.Mirrored+st.Errors()+st.Dropped() {
		t.Fatalf("unaccounted copies: %+v", st)
	}
	if st.DroppedQueueFull == 0 || st.Mirrored == 0 || st.ErrorsTimeout == 0 {
		t.Fatalf("want drops, mirrored copies and timeouts: %+v", st)
	}
	if st.Live != 0 {
		t.Fatalf("%d copies alive after Close", st.Live)
	}
	// Bounded: QueueSize copies of ~4 KiB request + 4 KiB primary + shadow
	// response is well under 1 MiB; allow 4 MiB of noise.
	if heapEnd > heapAt2k+4<<20 {
		t.Fatalf("heap grew from %d to %d bytes over %d requests", heapAt2k, heapEnd, n-2000)
	}
}

// TestCloseIsBoundedAndStopsGoroutines: Close with a hanging shadow and a
// long Timeout cancels the in-flight sends, drops the queue, counts both,
// and every goroutine of the Mirror exits; handles finished after Close
// and offers after Close are safe.
func TestCloseIsBoundedAndStopsGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A shadow that accepts every request and never answers (until the
	// test ends), counting arrivals.
	var arrived atomic.Int64
	release := make(chan struct{})
	addr := serve(t, func(rc *fasthttp.RequestCtx) {
		arrived.Add(1)
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the server shuts down
	sender := newSender(t, "http://"+addr)

	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.QueueSize = 16
	cfg.Concurrency = 4
	cfg.Timeout = time.Minute
	cfg.CloseTimeout = 2 * time.Second
	m, err := shadow.New(ctx, cfg, sender)
	if err != nil {
		t.Fatal(err)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"messages":[{"role":"user","content":"x"}]}`)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)

	var pending []*shadow.Handle
	for i := 0; i < 16; i++ {
		h := m.Offer(reqOf(req), nil)
		if h == nil {
			t.Fatalf("offer %d dropped", i)
		}
		if i%2 == 0 {
			finishResponse(h, resp, time.Millisecond)
		} else {
			pending = append(pending, h) // primary still running at Close
		}
	}
	waitFor(t, ctx, "4 sends in flight", func() bool { return arrived.Load() >= 4 })
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := m.Close(); err != shadow.ErrClosed {
		t.Fatalf("second Close() = %v", err)
	}
	for _, h := range pending {
		finishResponse(h, resp, time.Millisecond) // after Close: must be safe
	}
	if h := m.Offer(reqOf(req), nil); h != nil {
		t.Fatal("offer accepted after Close")
	}
	st := m.Stats()
	if st.ErrorsCanceled < 4 || st.DroppedClosed < 1 || st.Offered != st.Mirrored+st.Errors()+st.Dropped() {
		t.Fatalf("stats %+v", st)
	}
	_ = sender.Close()
	waitNoShadowGoroutines(t, ctx)
}

// TestContextEndsMirror: cancelling the ctx given to New stops the
// workers; later offers are dropped as closed.
func TestContextEndsMirror(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mctx, mcancel := context.WithCancel(ctx)
	cfg := shadow.DefaultConfig()
	cfg.Target = "x"
	cfg.Log.Path = t.TempDir() + "/d.jsonl"
	m, err := shadow.New(mctx, cfg, newSender(t, "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	mcancel()
	waitNoShadowGoroutines(t, ctx)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if h := m.Offer(reqOf(req), nil); h != nil || m.Stats().DroppedClosed != 1 {
		t.Fatalf("offer after ctx end: %v %+v", h, m.Stats())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
