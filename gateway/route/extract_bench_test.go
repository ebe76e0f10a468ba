package route

import (
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

func BenchmarkScanJSON(b *testing.B) {
	long := `{"messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 400) + `"}],"model":"llama","stream":true}`
	for _, tc := range []struct{ name, body string }{
		{"model-first", `{"model":"meta-llama/Llama-3-8B","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`},
		{"model-last-5KB", long},
		{"escaped", `{"model":"ll\u0061ma","messages":[]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			scratch := make([]byte, 0, 64)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				f, s, err := ScanJSON(body, scratch)
				if err != nil || !f.HasModel {
					b.Fatal(err)
				}
				scratch = s
			}
		})
	}
}

func BenchmarkGRPCModel(b *testing.B) {
	msg := grpcFrame(kserve.InferRequest{ModelName: "resnet50", ModelVersion: "1", ID: "req-1",
		RawInputContents: [][]byte{make([]byte, 4096)}}.Marshal())
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, found, _, err := GRPCModel(msg); err != nil || !found {
			b.Fatal(err)
		}
	}
}

func BenchmarkKServeModel(b *testing.B) {
	p := []byte("/v2/models/resnet50/versions/1/infer")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := KServeModel(p); !ok {
			b.Fatal("no model")
		}
	}
}
