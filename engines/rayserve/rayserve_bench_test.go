package rayserve

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkParseLoad(b *testing.B) {
	data, err := os.ReadFile("../testdata/fixtures/rayserve/ray-node-metrics-ray2.6.1-worker-datadog-fixture.prom")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = ParseLoad(bytes.NewReader(data))
	}
}

func BenchmarkParseApplications(b *testing.B) {
	data, err := os.ReadFile("../testdata/fixtures/rayserve/api-serve-applications-ray-docs.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseApplications(bytes.NewReader(data))
	}
}
