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
			h = m.Offer(ctxReq(rc), rc.Request.Header.Peek("X-Request-ID"))
		}
		d := time.Since(t0)
		start := time.Now()
		if err := primary.DoTimeout(&rc.Request, &rc.Response, 10*time.Second); err != nil {
			rc.Response.Reset()
			rc.SetStatusCode(fasthttp.StatusBadGateway)
		}
		t1 := time.Now()
		finishResponse(h, &rc.Response, t1.Sub(start))
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

// fastRequest reads a fasthttp request for the Mirror (shadow.Request), as
// the gateway's request view does for every protocol.
type fastRequest struct {
	req *fasthttp.Request
	ip  []byte
}

func ctxReq(rc *fasthttp.RequestCtx) *fastRequest {
	r := &fastRequest{req: &rc.Request}
	if ip := rc.RemoteIP(); len(ip) > 0 && !ip.IsUnspecified() {
		r.ip = ip.To4()
	}
	return r
}

func reqOf(req *fasthttp.Request) *fastRequest { return &fastRequest{req: req} }

func (r fastRequest) Header(name []byte) []byte { return r.req.Header.PeekBytes(name) }
func (r fastRequest) Cookie(name []byte) []byte { return r.req.Header.CookieBytes(name) }
func (r fastRequest) ClientIP() []byte          { return r.ip }

func (r fastRequest) CopyTo(c *shadow.Copy) shadow.BodyState {
	c.Method = append(c.Method[:0], r.req.Header.Method()...)
	c.URI = append(c.URI[:0], r.req.Header.RequestURI()...)
	c.Host = append(c.Host[:0], r.req.Header.Host()...)
	for k, v := range r.req.Header.All() {
		c.AddHeader(k, v)
	}
	if r.req.IsBodyStream() {
		return shadow.BodyLater
	}
	if !c.SetBody(r.req.Body()) {
		return shadow.BodyTooLarge
	}
	return shadow.BodyCopied
}

// finishResponse hands a buffered primary response to h, as the gateway
// does: a bounded copy of the body, then Finish.
func finishResponse(h *shadow.Handle, resp *fasthttp.Response, latency time.Duration) {
	if h == nil {
		return
	}
	_, _ = h.Write(resp.Body())
	h.Finish(shadow.Primary{Status: resp.StatusCode(), ContentType: resp.Header.ContentType(), Latency: latency})
}
