//go:build !race

package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// BenchmarkProxyGRPCUnary: a KServe ModelInfer call through the gateway
// (h2c both sides) against a direct call to the same node.
func BenchmarkProxyGRPCUnary(b *testing.B) {
	node := grpcBackend(b, "g")
	cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: node}}})
	gw := startGateway(b, cfg)
	msg := kserve.InferRequest{ModelName: "m", ID: "bench"}.Marshal()
	for _, target := range []struct{ name, addr string }{{"direct", node}, {"gateway", gw.addr}} {
		b.Run(target.name, func(b *testing.B) {
			cc := grpcClient(b, target.addr)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var out []byte
				for pb.Next() {
					if err := cc.Invoke(ctx, mInfer, msg, &out, grpc.WaitForReady(true)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkProxyH1Tracing compares a proxied request with tracing off and
// with every request sampled (SDK provider, no exporter).
func BenchmarkProxyH1Tracing(b *testing.B) {
	node := "http://" + fastBackend(b)
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "sampled"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(staticRoute("llama", node))
			if on {
				cfg.Telemetry.TraceRatio = 1
			}
			hc, stop := inmemGateway(b, cfg)
			defer stop()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			req.SetRequestURI("http://gateway/v1/chat/completions")
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.SetBody(chatBody)
			b.ReportAllocs()
			for b.Loop() {
				if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
					b.Fatal(err)
				}
			}
		})
	}
	_ = trace.NewTracerProvider
}
