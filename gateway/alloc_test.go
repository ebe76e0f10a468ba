//go:build !race

package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// fastBackend is a fasthttp node answering a fixed JSON body.
func fastBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// inmemGateway serves cfg on an in-memory client listener.
func inmemGateway(t testing.TB, cfg *Config) (*fasthttp.HostClient, func()) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(ctx, ln, nil)
	}()
	hc := &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 256}
	return hc, func() {
		cancel()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			t.Error("gateway did not stop")
		}
	}
}

var chatBody = []byte(`{"model":"llama","messages":[{"role":"user","content":"Say hi in one word."}],"max_tokens":8}`)

// TestProxyAllocs counts allocations of a whole proxied HTTP/1.1 request:
// client, gateway and node together (AllocsPerRun counts every
// goroutine). fasthttp's client and server allocate nothing per request
// on keep-alive connections, so what is measured is the gateway's.
func TestProxyAllocs(t *testing.T) {
	for _, streamOver := range []int{-1, 64 << 10} {
		t.Run("stream_body_over="+itoa(streamOver), func(t *testing.T) { proxyAllocs(t, streamOver) })
	}
}

func proxyAllocs(t *testing.T, streamOver int) {
	cfg := testConfig(staticRoute("llama", "http://"+fastBackend(t)))
	cfg.Limits.StreamBodyOver = streamOver
	hc, stop := inmemGateway(t, cfg)
	defer stop()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.SetRequestURI("http://gateway/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-Request-Id", "fixed-id")
	req.SetBody(chatBody)
	do := func() {
		if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("proxy: %v %d %s", err, resp.StatusCode(), resp.Body())
		}
	}
	for i := 0; i < 50; i++ {
		do() // warm pools and connections
	}
	n := testing.AllocsPerRun(500, do)
	t.Logf("allocations per proxied request (client+gateway+node): %v", n)
	if n > 0.5 {
		t.Errorf("a proxied request allocates %v times; want 0", n)
	}
}
