package ascend

import (
	"bytes"
	"testing"
)

func BenchmarkParseInfo(b *testing.B) {
	data := fx(b, "npu-smi-info-a3-ascend910-26.1.0.txt")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseInfo(bytes.NewReader(data))
	}
}

func BenchmarkParseExporter(b *testing.B) {
	data := fx(b, "npu-exporter-metrics-910a-testdata.prom")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseExporter(bytes.NewReader(data))
	}
}
