//go:build !race

package balancer

import "testing"

// TestPickAllocatesNothing: every policy picks without allocating, also
// with exclusions and on retries.
func TestPickAllocatesNothing(t *testing.T) {
	for _, name := range []string{"dynamic-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"} {
		cfg, _ := NamedConfig(name)
		tb := build(t, cfg, loadedNodes(1000, 5))
		tb.Endpoint(3).Exclude(ExcludeBreaker)
		avoid := []*Endpoint{tb.Endpoint(0)}
		var k uint64
		allocs := testing.AllocsPerRun(10000, func() {
			k += 0x9E3779B97F4A7C15
			if _, err := tb.PickAvoiding(k, avoid); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pick", name, allocs)
		}
	}
}
