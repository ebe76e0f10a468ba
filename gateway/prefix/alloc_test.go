//go:build !race

package prefix

import (
	"strings"
	"testing"
)

// Scan allocates nothing, on every shape of body and when thinning.
func TestScanAllocatesNothing(t *testing.T) {
	bodies := append(fuzzSeeds(t), chatBody(t, strings.Repeat("system ", 2000), "a", "b", "c", "d", "e"))
	var hashes [16]uint64
	var ends [16]uint32
	for _, b := range bodies {
		if n := testing.AllocsPerRun(50, func() { _, _ = Scan(b, 1, hashes[:], ends[:]) }); n != 0 {
			t.Errorf("%.50q: %v allocations per scan", b, n)
		}
	}
}
