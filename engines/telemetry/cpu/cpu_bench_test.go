package cpu

import (
	"strings"
	"testing"
)

func BenchmarkParseStat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseStat(strings.NewReader(stat1))
	}
}
