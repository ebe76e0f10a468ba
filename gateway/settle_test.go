package gateway

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// TestCompletionsCounted: a request a node answered below 400, plain or
// streamed, counts as completed on its endpoint (the default weigher's
// measure of the node's speed); one it answered with an error does not;
// either way nothing stays in flight.
func TestCompletionsCounted(t *testing.T) {
	ok := backend(t, "ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("X-Node", "ok")
		if r.URL.Path == "/v1/chat/completions" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"x\":1}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	bad := backend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("X-Node", "bad")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"no such thing"}`)
	})
	gw := startGateway(t, testConfig(staticRoute("m", ok.URL, bad.URL)))
	c := testClient()
	served := map[string]uint32{}
	for i := 0; i < 20; i++ {
		path, body := "/v1/completions", `{"model":"m"}`
		if i%2 == 1 {
			path, body = "/v1/chat/completions", `{"model":"m","stream":true}`
		}
		resp, _ := post(t, c, gw.url(path), body)
		served[resp.Header.Get("X-Node")]++
	}
	if served["ok"] == 0 || served["bad"] == 0 {
		t.Fatalf("both nodes should have served requests: %v", served)
	}
	r := gw.g.core.Routes().Route("m")
	tb := r.Table()
	waitFor(t, 5*time.Second, "every request released", func() bool { return r.InFlight() == 0 })
	for i := 0; i < tb.Len(); i++ {
		e := tb.Endpoint(i)
		name := "ok"
		want := served["ok"]
		if e.Value().(*upstream.Node).Addr().HTTP == hostOf(bad) {
			name, want = "bad", 0
		}
		if got := e.Completed(); got != want {
			t.Errorf("node %s: %d completed, want %d (it served %d)", name, got, want, served[name])
		}
	}
}
