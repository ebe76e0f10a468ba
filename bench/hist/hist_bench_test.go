package hist

import "testing"

func BenchmarkRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	v := int64(1)
	for b.Loop() {
		h.Record(v)
		v = v*31 + 7&(1<<30-1)
	}
}
