package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestConnectionNamedHeadersDropped: the headers a Connection header
// names are hop-by-hop (RFC 9110 §7.6.1): the client's stop at the
// gateway, and so do the node's, on buffered and streamed answers.
func TestConnectionNamedHeadersDropped(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "hop", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		w.Header().Set("Connection", "X-Hop, X-Hop-Two")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("X-Hop-Two", "2")
		w.Header().Set("X-Kept", "yes")
		if r.URL.Query().Get("stream") != "" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("data: {}\n\n"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("data: [DONE]\n\n"))
			return
		}
		_, _ = w.Write([]byte("{}"))
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	for _, path := range []string{"/v1/completions", "/v1/completions?stream=1", "h2c /v1/completions", "h2c /v1/completions?stream=1"} {
		var resp *http.Response
		var body []byte
		if p, ok := strings.CutPrefix(path, "h2c "); ok {
			// HTTP/2 has no Connection header: only the node's side.
			resp, body = post(t, h2, gw.url(p), `{"model":"m"}`, "X-Also", "yes")
			if resp.ProtoMajor != 2 {
				t.Fatalf("%s: answered over HTTP/%d", path, resp.ProtoMajor)
			}
		} else {
			resp, body = post(t, testClient(), gw.url(path), `{"model":"m"}`,
				"Connection", "X-Foo, keep-alive", "X-Foo", "bar", "X-Also", "yes")
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %s", path, resp.StatusCode, body)
		}
		for _, h := range []string{"X-Hop", "X-Hop-Two"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("%s: the client got %s: %q, which the node's Connection header named", path, h, v)
			}
		}
		if resp.Header.Get("X-Kept") != "yes" {
			t.Errorf("%s: client headers %v: want X-Kept", path, resp.Header)
		}
	}
	for i, h := range nodeGot.all() {
		if v := h.Get("X-Foo"); v != "" {
			t.Errorf("request %d: the node got X-Foo %q, which the client's Connection header named", i, v)
		}
		if v := h.Get("Connection"); v != "" && v != "close" {
			t.Errorf("request %d: the node got the client's Connection %q", i, v)
		}
		if h.Get("X-Also") != "yes" {
			t.Errorf("request %d: node headers %v: want X-Also", i, h)
		}
	}
}
