//go:build !race

package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/h2key"
	"github.com/switchyard-dev/switchyard/internal/h2server"
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

// TestProxyH2Allocs measures what the gateway adds per HTTP/2 request, after
// warm-up: allocations of a whole h2c round trip through the gateway to a
// fasthttp node, less those of the same round trip to the gateway's own
// HTTP/2 server (internal/h2server) answering the same headers and body
// itself: the HTTP/2 server's and client's per-stream allocations (a
// request struct, header maps, stream state), which are not the
// forwarding's. Both servers leave the header map out (NoHeaderMap) and
// answer the client's request ID as a one-element slice.
func TestProxyH2Allocs(t *testing.T) {
	node := fastBackend(t)
	gw := startGateway(t, testConfig(staticRoute("llama", "http://"+node)))
	// The same answer, written by a plain HTTP/2 handler.
	nodeBody := []byte(`{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`)
	date := []string{time.Now().UTC().Format(http.TimeFormat)}
	base := &h2server.Server{NoHeaderMap: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := bodyBuf.Get().(*[]byte)
		*buf, _ = readAll(r.Body, (*buf)[:0])
		bodyBuf.Put(buf)
		h := w.Header()
		h["Content-Type"] = ctJSONs
		h["Content-Length"] = lenNodeBody
		h["X-Request-Id"] = []string{h2key.Value(w.(h2server.FieldRelay).RequestFields(), "x-request-id")}
		h["Server"] = serverName
		h["Date"] = date
		w.WriteHeader(200)
		_, _ = w.Write(nodeBody)
	})}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			go base.ServeConn(c)
		}
	}()
	t.Cleanup(func() { _ = bl.Close(); <-accepted; _ = base.Close() })
	var headers [2]http.Header
	measure := func(addr string) float64 {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
		body := bytes.NewReader(chatBody)
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "fixed-id")
		buf := make([]byte, 0, 1024)
		do := func() {
			body.Reset(chatBody)
			req.Body = io.NopCloser(body)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v", addr, err)
			}
			buf, _ = readAll(resp.Body, buf[:0])
			resp.Body.Close()
			if headers[0] == nil {
				headers[0] = resp.Header
			} else {
				headers[1] = resp.Header
			}
			if !bytes.Equal(buf, nodeBody) {
				t.Fatalf("%s answered %q", addr, buf)
			}
		}
		for i := 0; i < 100; i++ {
			do()
		}
		return testing.AllocsPerRun(500, do)
	}
	baseline := measure(bl.Addr().String())
	headers[0] = nil
	through := measure(gw.addr)
	t.Logf("answer headers: %v", headers[1])
	t.Logf("allocations per HTTP/2 request: %.1f through the gateway, %.1f answering directly; the gateway adds %.1f", through, baseline, through-baseline)
	if through-baseline > 0.5 {
		t.Errorf("the gateway adds %.1f allocations per HTTP/2 request; want 0", through-baseline)
	}
}

var (
	ctJSONs     = []string{"application/json"}
	lenNodeBody = []string{"112"}
	serverName  = []string{"fasthttp"}
	bodyBuf     = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
