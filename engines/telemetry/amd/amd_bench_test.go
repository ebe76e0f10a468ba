package amd

import (
	"bytes"
	"testing"
)

func BenchmarkParseSMI(b *testing.B) {
	data := fx(b)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseSMI(bytes.NewReader(data))
	}
}
