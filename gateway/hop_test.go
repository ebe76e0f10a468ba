package gateway

import (
	"net/http"
	"sync"
	"testing"
)

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
