package prefix

import (
	"strings"
	"testing"
)

// BenchmarkScan measures a chat body typical of the affinity benchmark's
// workload (a 6 KB system prompt and a conversation at its third turn)
// and others, with Scan and with ScanChecked (the gateway's case: the
// body was checked while its model was read).
func BenchmarkScan(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"chat-8KB", chatBody(b, strings.Repeat("You are a support agent for ACME. ", 180), strings.Repeat("user words ", 30), strings.Repeat("assistant words ", 60), strings.Repeat("user words ", 30), strings.Repeat("assistant words ", 60), "and now?")},
		{"chat-cjk-8KB", chatBody(b, strings.Repeat("你是一名客服助理，请礼貌地回答问题。", 150), "你好")},
		{"chat-escaped-8KB", chatBody(b, strings.Repeat("Réponds en français, \"poliment\".\n", 200), "ça va ?")},
		{"completion-64KB", []byte(`{"model":"m","prompt":"` + strings.Repeat("lorem ipsum ", 5460) + `"}`)},
	} {
		for _, v := range []struct {
			name string
			scan func([]byte, uint64, []uint64, []uint32) (Result, error)
		}{{"", Scan}, {"/checked", ScanChecked}} {
			b.Run(c.name+v.name, func(b *testing.B) {
				var hashes [128]uint64
				var ends [128]uint32
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.scan(c.body, 1, hashes[:], ends[:]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
