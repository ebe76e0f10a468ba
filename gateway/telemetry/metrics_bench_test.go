package telemetry

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkRecord is the per-request recording of a streamed request:
// model lookup, result, latency, TTFT, 64 inter-token times, tokens,
// tenant and node; in parallel to show the atomics' contention.
func BenchmarkRecord(b *testing.B) {
	m, err := NewMetrics()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	x := m.Route("r").Models([]string{"llama-3-70b", "qwen"})
	nd := m.Node("r", "n")
	model := []byte("llama-3-70b")
	x.Lookup(model).Tenant("team-a")
	record := func() {
		ms := x.Lookup(model)
		t := TokenTimes{Model: ms, Node: nd}
		t.FirstToken(80 * time.Millisecond)
		for range 64 {
			t.InterToken(4 * time.Millisecond)
		}
		ms.Observe(200, 2*time.Second)
		ms.Tokens(100, 64)
		ms.Tenant("team-a").Add(100, 64)
		nd.Observe(200, 30*time.Millisecond)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			record()
		}
	})
	for _, p := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("parallel-%d", p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					record()
				}
			})
		})
	}
}

// BenchmarkScrape gathers a gateway with 20 routes of 3 models and 2000
// nodes (no HTTP): the scrape's cost, paid per scrape, not per request.
func BenchmarkScrape(b *testing.B) {
	m, err := NewMetrics()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	for r := range 20 {
		x := m.Route(fmt.Sprint("route-", r)).Models([]string{"a", "b", "c"})
		for _, mod := range []string{"a", "b", "c", "zzz"} {
			ms := x.Lookup([]byte(mod))
			ms.Observe(200, time.Second)
			ms.FirstToken(time.Second)
			ms.InterToken(time.Millisecond)
			ms.Tokens(1, 1)
		}
		for n := range 100 {
			nd := m.Node(fmt.Sprint("route-", r), fmt.Sprint("node-", n))
			nd.Observe(200, 30*time.Millisecond)
			nd.FirstToken(time.Second)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Gatherer().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
