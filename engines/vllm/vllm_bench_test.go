package vllm

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkParseLoad(b *testing.B) {
	data, err := os.ReadFile("../testdata/fixtures/vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = ParseLoad(bytes.NewReader(data))
	}
}
