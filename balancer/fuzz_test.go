package balancer

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// FuzzTable builds tables from arbitrary bytes (node count, capacities,
// loads with engine queues and KV-cache usage, known or not, states,
// exclusions, policy, block size) and checks that picks never panic, never
// return an ineligible node, and return the typed error exactly when
// nothing is eligible; and that every Ready node has a positive, finite
// weight and a finite, non-negative queue.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 3, 5, 1, 1})
	f.Add([]byte{1, 8, 200, 0, 3, 255, 17, 9, 4, 4, 4, 4})
	f.Add([]byte{2, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte{3, 1, 0})
	f.Add([]byte{4, 16, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 4096 {
			return
		}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		policy := Policy(next() % byte(policyCount))
		n := int(next())
		block := 1 + int(next()%32)
		weighers := []Weigher{HeadroomWeigher{}, SeedWeigher{}, StaticWeigher{}, ThroughputWeigher{}}
		b, err := NewBuilder(Config{Policy: policy, BlockSize: block, Weigher: weighers[n%4], Choices: 1 + n%2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes := make([]Node, n)
		excluded := make(map[string]bool)
		for i := range nodes {
			c, u, k, flags, q := next(), next(), next(), next(), next()
			nodes[i] = Node{
				ID:       fmt.Sprintf("n%d", i%(n/2+1+int(flags&1))), // some duplicate ids
				Addr:     Address{HTTP: fmt.Sprintf("a%d", i)},
				Capacity: float64(c) / 8,
				State:    State(flags >> 1 % 6),
				Load: Load{
					Utilisation: float64(u)/100 - 0.2, Concurrency: float64(k) - 10,
					Running: float64(k), Waiting: float64(q) - 20, KVCache: float64(q) / 200,
					SampledAt: t0.Add(-time.Duration(flags&0x0f) * time.Second),
				},
			}
			if flags&0x20 != 0 {
				nodes[i].Load.Utilisation = math.NaN()
			}
			if q&0x80 != 0 {
				nodes[i].Load.Waiting, nodes[i].Load.KVCache = math.NaN(), math.NaN()
			}
			if q == 0xff {
				nodes[i].Load.Waiting, nodes[i].Load.KVCache = math.Inf(1), math.Inf(1)
			}
		}
		tb := b.Build(nodes, t0)
		for i := 0; i < tb.Ready(); i++ {
			if w, q := tb.Weight(i), tb.Queue(i); !(w > 0) || math.IsInf(w, 0) || !(q >= 0) || math.IsInf(q, 0) {
				t.Fatalf("ready node %d: weight %v queue %v", i, w, q)
			}
		}
		for i := 0; i < tb.Len(); i++ {
			if next()&1 == 1 {
				tb.Endpoint(i).Exclude(ExcludeBreaker)
				excluded[tb.Node(i).ID] = true
			}
		}
		anyEligible := false
		for i := 0; i < tb.Len(); i++ {
			if tb.Node(i).State == Ready && !excluded[tb.Node(i).ID] {
				anyEligible = true
			}
		}
		for k := 0; k < 64; k++ {
			e, err := tb.Pick(uint64(k) * 0x9E3779B97F4A7C15)
			if !anyEligible {
				if !errors.Is(err, ErrNoEndpoint) {
					t.Fatalf("nothing eligible, got %v %v", e, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("eligible nodes exist, got %v", err)
			}
			i := indexOf(tb, e.ID())
			if tb.Node(i).State != Ready || excluded[e.ID()] {
				t.Fatalf("picked ineligible node %s (state %v)", e.ID(), tb.Node(i).State)
			}
		}
	})
}
