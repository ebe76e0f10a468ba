package forward

import (
	"bytes"
	"testing"
)

// hopReference is the plain definition: some header line's name, trimmed
// of blanks, equals a hop-by-hop header's name in any case.
func hopReference(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimRight(name, " \t")
		for _, h := range h1HopHeaders {
			if bytes.EqualFold(name, []byte(h)) {
				return true
			}
		}
	}
	return false
}

func TestHasHopHeader(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"Host: x\r\nContent-Type: application/json\r\n\r\n", false},
		{"Host: x\r\nTE: trailers\r\n\r\n", true},
		{"Host: x\r\nte:trailers\r\n\r\n", true},
		{"Host: x\r\nKeep-Alive: timeout=5\r\n\r\n", true},
		{"Proxy-Connection: keep-alive\r\n", true},
		{"Host: x\r\nUPGRADE: h2c\r\n", true},
		{"Expect: 100-continue\r\n", true},
		{"Trailer : X\r\n", true},
		{"Teapot: 1\r\nTrailers-Fake: 2\r\nExpected: 3\r\n", false},
		{"X-Te: 1\r\n", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := hasHopHeader([]byte(tc.raw)); got != tc.want || got != hopReference([]byte(tc.raw)) {
			t.Errorf("hasHopHeader(%q) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

// FuzzHasHopHeader: the fast scan never misses a hop-by-hop header the
// plain definition finds.
func FuzzHasHopHeader(f *testing.F) {
	f.Add([]byte("Host: x\r\nTE: trailers\r\n\r\n"))
	f.Add([]byte("Host: x\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("upgrade\t: x\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if hopReference(raw) && !hasHopHeader(raw) {
			t.Fatalf("missed a hop-by-hop header in %q", raw)
		}
	})
}
