package kserve

import "testing"

func BenchmarkPeekModelName(b *testing.B) {
	req := InferRequest{ModelName: "llama-3-8b", ID: "abc",
		Inputs: []Tensor{{Name: "t", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{make([]byte, 1024)}}}}.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = PeekModelName(req)
	}
}
