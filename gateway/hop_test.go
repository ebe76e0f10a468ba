package gateway

import (
	"bytes"
	"net/http"
	"sync"
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
		for _, h := range hopHeaders {
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

// TestHopHeadersNotForwarded: hop-by-hop request headers stop at the
// gateway; the others reach the node, X-Forwarded-For with the client's
// address appended.
func TestHopHeadersNotForwarded(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	be := backend(t, "hop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		_, _ = w.Write([]byte("{}"))
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`,
		"Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive", "Te", "trailers", "Trailer", "X-Foo", "X-Kept", "yes",
		"X-Forwarded-For", "10.1.2.3")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer"} {
		if v := seen.Get(h); v != "" {
			t.Errorf("node got hop-by-hop %s: %q", h, v)
		}
	}
	if seen.Get("X-Kept") != "yes" || seen.Get("X-Forwarded-For") != "10.1.2.3, 127.0.0.1" || seen.Get("X-Request-Id") == "" {
		t.Errorf("node headers %v: want X-Kept, X-Forwarded-For 10.1.2.3, 127.0.0.1 and X-Request-Id", seen)
	}
}
