package split_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/switchyard-dev/switchyard/gateway/split"
)

func BenchmarkAssign(b *testing.B) {
	s := mustNew(b, ab(90, 10))
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("user-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = s.Assign(keys[i&1023])
		i++
	}
}

func BenchmarkAssignRequest(b *testing.B) {
	cfg := split.Config{Variants: split.Variants{{Name: "a", Weight: 70}, {Name: "b", Weight: 20}, {Name: "c", Weight: 10}}}
	cfg.Key.Header = "X-User-ID"
	s := mustNew(b, cfg)
	var rc fasthttp.RequestCtx
	rc.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3)}, nil)
	rc.Request.Header.Set("X-User-ID", "user-123456")
	b.ReportAllocs()
	for b.Loop() {
		_ = s.AssignRequest(ctxRequest{&rc})
	}
}

func BenchmarkAssignParallel(b *testing.B) {
	s := mustNew(b, ab(90, 10))
	for _, p := range []int{1, 4, 16} {
		b.Run("p"+strconv.Itoa(p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				k := []byte("user-000000")
				i := 0
				for pb.Next() {
					k[5] = byte('0' + i%10)
					_ = s.Assign(k)
					i++
				}
			})
		})
	}
}

func BenchmarkRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	s := mustNew(b, ab(90, 10), split.WithMeter(mp.Meter("bench")))
	r := split.Result{Status: 200, Latency: 3 * time.Millisecond, Tokens: 12}
	b.ReportAllocs()
	for b.Loop() {
		s.Record(0, r)
	}
}
