package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// loadedNodes returns n ready nodes with mixed capacities and fresh load
// samples, the shape a gateway rebuilds every few seconds: each node has
// 4 request slots per unit of capacity, runs a random number of them, and
// reports utilisation as running/slots with ±10 % noise; a full node has
// up to as many requests waiting and a KV cache 80-100 % full; one node in
// 50 has a stale sample, and one in 10 reports no engine signals.
func loadedNodes(n int, seed uint64) []Node {
	rng := rand.New(rand.NewPCG(seed, 7))
	caps := []float64{8, 4, 2.5, 1, 16}
	nodes := make([]Node, n)
	for i := range nodes {
		c := caps[i%len(caps)]
		slots := 4 * c
		running := float64(rng.IntN(int(slots) + 1))
		age := time.Duration(rng.IntN(3000)) * time.Millisecond
		if i%50 == 0 {
			age = time.Minute
		}
		waiting, kv := 0.0, running/slots*0.8
		if running == slots { // no extra draws: the other fields stay as they were before the signals
			waiting = float64(i * 7 % (int(slots) + 1))
			kv = 0.8 + 0.02*float64(i%11)
		}
		nodes[i] = Node{
			ID:       fmt.Sprintf("node-%07d", i),
			Addr:     Address{HTTP: fmt.Sprintf("10.%d.%d.%d:8000", i>>16&255, i>>8&255, i&255)},
			Capacity: c,
			Load: Load{
				Utilisation: min(running/slots*(0.9+0.2*rng.Float64()), 1),
				Concurrency: running,
				Running:     running,
				Waiting:     waiting,
				KVCache:     kv,
				SampledAt:   t0.Add(-age),
			},
		}
		if i%10 == 5 {
			nodes[i].Load.Running, nodes[i].Load.Waiting, nodes[i].Load.KVCache = math.NaN(), math.NaN(), math.NaN()
		}
	}
	return nodes
}

var sizes = []int{10, 1_000, 100_000}

func BenchmarkPickSWRR(b *testing.B) {
	for _, n := range sizes {
		tb := build(b, Config{}, loadedNodes(n, 1))
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tb.Pick(0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("nodes=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := tb.Pick(0); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkPickPolicies compares every picker at 1,000 nodes.
func BenchmarkPickPolicies(b *testing.B) {
	for _, name := range []string{"dynamic-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"} {
		cfg, _ := NamedConfig(name)
		tb := build(b, cfg, loadedNodes(1000, 2))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var k uint64
			for b.Loop() {
				k += 0x9E3779B97F4A7C15
				if _, err := tb.Pick(k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var k uint64
				for pb.Next() {
					k += 0x9E3779B97F4A7C15
					if _, err := tb.Pick(k); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkPickExcluded: picks while a third of the nodes are excluded.
func BenchmarkPickExcluded(b *testing.B) {
	tb := build(b, Config{}, loadedNodes(1000, 3))
	for i := 0; i < tb.Len(); i += 3 {
		tb.Endpoint(i).Exclude(ExcludeBreaker)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.Pick(0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		nodes := loadedNodes(n, 4)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			bl, err := NewBuilder(Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			bl.Build(nodes, t0) // endpoints exist, as in steady state
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				// A millisecond apart, so the samples stay fresh (the
				// weigher's full path) however many builds run.
				now = now.Add(time.Millisecond)
				bl.Build(nodes, now)
			}
		})
	}
}
