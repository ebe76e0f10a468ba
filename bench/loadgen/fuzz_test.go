package loadgen

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzReadSSE checks readSSE against a reference: it succeeds exactly when
// the stream has a "data:" line, and then reports a positive time to first
// token. It never panics.
func FuzzReadSSE(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"text\":\"x\"}]}\r\n\r\n",
		": keep-alive\n\nevent: ping\n\n",
		"data:[DONE]\n",
		"",
		"data: {\"content\":\"\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		ttft, err := readSSE(bytes.NewReader(b), time.Now())
		want := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSuffix(line, "\r"), "data:") {
				want = true
				break
			}
		}
		if (err == nil) != want {
			t.Fatalf("stream %q: err %v, want success %v", b, err, want)
		}
		if err == nil && ttft <= 0 {
			t.Fatalf("stream %q: ttft %v", b, ttft)
		}
	})
}
