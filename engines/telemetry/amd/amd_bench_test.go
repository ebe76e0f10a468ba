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

func BenchmarkParseAMDSMI(b *testing.B) {
	data := fxa(b, "amd-smi-metric-gpu-data-rx7800xt-derived.json")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseAMDSMI(bytes.NewReader(data))
	}
}
