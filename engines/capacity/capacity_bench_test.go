package capacity

import "testing"

func BenchmarkLookup(b *testing.B) {
	tab := Default()
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.Lookup("NVIDIA H100 80GB HBM3")
	}
}
