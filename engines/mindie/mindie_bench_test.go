package mindie

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkParseLoad(b *testing.B) {
	data, err := os.ReadFile("../testdata/fixtures/ascend/mindie-server-metrics-llama65b-motor-testdata.prom")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = ParseLoad(bytes.NewReader(data))
	}
}
