//go:build !race

package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// baselineProxy is the minimal fasthttp proxy the issue compares against:
// one HostClient, forward, answer.
func baselineProxy(b *testing.B, node string) string {
	b.Helper()
	hc := &fasthttp.HostClient{Addr: node, MaxConns: 4096, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Del("Connection")
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Header.Del("Connection")
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// BenchmarkProxyVsBaseline: the same loopback client and node through the
// minimal fasthttp proxy and through the gateway (quick-start config).
func BenchmarkProxyVsBaseline(b *testing.B) {
	node := fastBackend(b)
	cfg, err := QuickStart("127.0.0.1:0", "", []string{"llama=http://" + node})
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()
	for _, tc := range []struct{ name, addr string }{{"baseline", baselineProxy(b, node)}, {"gateway", ln.Addr().String()}} {
		b.Run(tc.name, func(b *testing.B) {
			hc := &fasthttp.HostClient{Addr: tc.addr, MaxConns: 64}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI("http://" + tc.addr + "/v1/chat/completions")
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.SetBody(chatBody)
				for pb.Next() {
					if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d", err, resp.StatusCode())
					}
				}
			})
		})
	}
}
