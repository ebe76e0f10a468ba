//go:build !race

package split_test

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/switchyard-dev/switchyard/gateway/split"
)

// TestAssignDoesNotAllocate: the per-request calls of the hot path allocate
// nothing (STYLE §2).
func TestAssignDoesNotAllocate(t *testing.T) {
	cfg := ab(90, 10)
	cfg.Key = split.KeyConfig{Header: "X-User-ID", Cookie: "uid"}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	s := mustNew(t, cfg, split.WithMeter(mp.Meter("alloc")))

	var rc fasthttp.RequestCtx
	rc.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4000}, nil)
	cases := []struct {
		name  string
		setup func(*fasthttp.Request)
		want  split.Source
	}{
		{"header", func(r *fasthttp.Request) { r.Header.Set("X-User-ID", "user-42") }, split.SourceHeader},
		{"cookie", func(r *fasthttp.Request) { r.Header.SetCookie("uid", "user-42") }, split.SourceCookie},
		{"addr", func(*fasthttp.Request) {}, split.SourceAddr},
		{"override", func(r *fasthttp.Request) { r.Header.Set(split.DefaultOverrideHeader, "model-b") }, split.SourceOverride},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc.Request.Reset()
			tc.setup(&rc.Request)
			if a := s.AssignRequest(ctxRequest{&rc}); a.Source != tc.want {
				t.Fatalf("source %v, want %v", a.Source, tc.want)
			}
			if n := testing.AllocsPerRun(1000, func() { _ = s.AssignRequest(ctxRequest{&rc}) }); n != 0 {
				t.Fatalf("AssignRequest allocates %v per run", n)
			}
		})
	}
	k := []byte("user-42")
	if n := testing.AllocsPerRun(1000, func() { _ = s.Assign(k) }); n != 0 {
		t.Fatalf("Assign allocates %v per run", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Record(1, split.Result{Status: 200, Latency: time.Millisecond, Tokens: 5}) }); n != 0 {
		t.Fatalf("Record allocates %v per run", n)
	}
}
