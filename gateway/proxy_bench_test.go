//go:build !race

package gateway

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkProxyH1 is a whole proxied request (in-memory client link,
// loopback node), serial and at several parallelism levels.
func BenchmarkProxyH1(b *testing.B) {
	cfg := testConfig(staticRoute("llama", "http://"+fastBackend(b)))
	hc, stop := inmemGateway(b, cfg)
	defer stop()
	run := func(b *testing.B, req *fasthttp.Request, resp *fasthttp.Response) {
		if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("proxy: %v %d", err, resp.StatusCode())
		}
	}
	newReq := func() *fasthttp.Request {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("http://gateway/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBody(chatBody)
		return req
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		req, resp := newReq(), fasthttp.AcquireResponse()
		for b.Loop() {
			run(b, req, resp)
		}
	})
	for _, p := range []int{4, 16} {
		b.Run("parallel-"+itoa(p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				req, resp := newReq(), fasthttp.AcquireResponse()
				for pb.Next() {
					run(b, req, resp)
				}
			})
		})
	}
}
