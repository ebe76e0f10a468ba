package shadow_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// startSim starts a fast simulated engine that answers maxTokens tokens.
func startSim(tb testing.TB, ctx context.Context, id string, maxTokens int) *sim.Node {
	tb.Helper()
	n, err := sim.Start(ctx, sim.Config{
		ID:       id,
		Model:    "m",
		Profile:  "h100",
		Override: sim.Profile{Prefill: time.Millisecond, PerToken: 200 * time.Microsecond, MaxTokens: maxTokens, Slots: 64},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = n.Close() })
	return n
}

// serve runs h on a loopback listener until the test ends.
func serve(tb testing.TB, h fasthttp.RequestHandler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return ln.Addr().String()
}

// serveStoppable is serve with an explicit stop.
func serveStoppable(tb testing.TB, h fasthttp.RequestHandler) (string, func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Shutdown(); <-done }
}

// proxyHandler is a minimal gateway of our own: forward to the primary,
// offer the request to the mirror, hand the primary's response over.
func proxyHandler(primary *fasthttp.HostClient, m *shadow.Mirror) fasthttp.RequestHandler {
	return proxyHandlerCost(primary, m, nil)
}

// proxyHandlerCost is proxyHandler that also reports the time spent in the
// Mirror's calls (Offer + FinishResponse) per request to cost.
func proxyHandlerCost(primary *fasthttp.HostClient, m *shadow.Mirror, cost func(time.Duration)) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		var h *shadow.Handle
		t0 := time.Now()
		if m != nil {
			h = m.Offer(rc, rc.Request.Header.Peek("X-Request-ID"))
		}
		d := time.Since(t0)
		start := time.Now()
		if err := primary.DoTimeout(&rc.Request, &rc.Response, 10*time.Second); err != nil {
			rc.Response.Reset()
			rc.SetStatusCode(fasthttp.StatusBadGateway)
		}
		t1 := time.Now()
		h.FinishResponse(&rc.Response, t1.Sub(start))
		if cost != nil {
			cost(d + time.Since(t1))
		}
	}
}

func newSender(tb testing.TB, url string) *shadow.HTTPSender {
	tb.Helper()
	s, err := shadow.NewHTTPSender(shadow.HTTPSenderConfig{BaseURL: url})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(tb testing.TB, ctx context.Context, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitNoShadowGoroutines waits until no goroutine runs code of the
// shadow package (workers, the log writer, senders).
func waitNoShadowGoroutines(tb testing.TB, ctx context.Context) {
	tb.Helper()
	var last string
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		last = ""
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "gateway/shadow.(*") && !strings.Contains(g, "gateway/shadow_test.") {
				last = g
				break
			}
		}
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("shadow goroutine still running:\n%s", last)
		case <-tick.C:
		}
	}
}
