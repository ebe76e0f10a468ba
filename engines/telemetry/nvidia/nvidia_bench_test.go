package nvidia

import (
	"bytes"
	"testing"
)

func BenchmarkParseSMI(b *testing.B) {
	data := fx(b, "nvidia-smi-query-gpu-csv-h100-load.csv")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseSMI(bytes.NewReader(data), nil)
	}
}

func BenchmarkParseDCGM(b *testing.B) {
	data := fx(b, "dcgm-exporter-t4-datadog-fixture.prom")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseDCGM(bytes.NewReader(data))
	}
}
