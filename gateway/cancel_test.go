package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hangingNode is a node that holds every request until its client goes
// (or 20 s pass) and reports when it saw the cancellation: an engine
// generating a long answer that nobody will read.
func hangingNode(t *testing.T) (url string, arrived, cancelled chan struct{}) {
	t.Helper()
	arrived, cancelled = make(chan struct{}, 8), make(chan struct{}, 8)
	be := backend(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			return // health checks get their answer
		}
		arrived <- struct{}{}
		timer := time.NewTimer(20 * time.Second)
		defer timer.Stop()
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-timer.C:
		}
	})
	return be.URL, arrived, cancelled
}

// TestCancellationReachesNode: a client that goes away while its buffered
// request waits for the node — an HTTP/1.1 client closing its connection,
// an HTTP/2 client resetting its stream — cancels the node's work (the
// gateway closes its connection to the node), within about a second, and
// the gateway counts the request as cancelled.
func TestCancellationReachesNode(t *testing.T) {
	url, arrived, cancelled := hangingNode(t)
	cfg := testConfig(staticRoute("m", url))
	// The node holds every request, health probes included: a probe
	// arriving (and timing out) would pass for the request under test.
	cfg.Routes[0].HealthCheck.Disable = true
	gw := startGateway(t, cfg)
	wait := func(ch chan struct{}, what string, d time.Duration) {
		t.Helper()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("%s: not within %v", what, d)
		}
	}
	st := func() uint64 { return gw.g.core.Routes().Route("m").Stats().Cancelled() }

	// HTTP/1.1: write the request on a raw connection, then close it.
	c, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"model":"m","messages":[]}`
	_, _ = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	wait(arrived, "the HTTP/1.1 request at the node", 5*time.Second)
	begin := time.Now()
	c.Close()
	wait(cancelled, "the node's cancellation after the HTTP/1.1 client left", 3*time.Second)
	t.Logf("HTTP/1.1 client gone -> node cancelled in %v", time.Since(begin))
	waitFor(t, 5*time.Second, "the HTTP/1.1 request counted as cancelled", func() bool { return st() == 1 })

	// HTTP/2: cancel the request's context (RST_STREAM).
	h2 := &http.Client{Transport: &http.Transport{Protocols: h2cOnly()}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", gw.url("/v1/chat/completions"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := h2.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	wait(arrived, "the HTTP/2 request at the node", 5*time.Second)
	begin = time.Now()
	cancel()
	wait(cancelled, "the node's cancellation after the HTTP/2 stream was reset", 3*time.Second)
	t.Logf("HTTP/2 stream reset -> node cancelled in %v", time.Since(begin))
	<-done
	waitFor(t, 5*time.Second, "the HTTP/2 request counted as cancelled", func() bool { return st() == 2 })
	waitFor(t, 5*time.Second, "in-flight back to 0", func() bool { return gw.g.InFlight() == 0 })
}

// TestSlowHTTP2BodyTimesOut: an HTTP/2 request whose body stops arriving
// is answered 408 after limits.read_timeout, and it never holds one of
// limits.max_concurrent's slots meanwhile: another request goes through.
func TestSlowHTTP2BodyTimesOut(t *testing.T) {
	be := backend(t, "n", nil)
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.ReadTimeout = time.Second
	cfg.Limits.MaxConcurrent = 1
	gw := startGateway(t, cfg)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	pr, pw := io.Pipe()
	defer pw.Close()
	var status atomic.Int32
	done := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := h2.Do(req)
		if err != nil {
			return
		}
		status.Store(int32(resp.StatusCode))
		resp.Body.Close()
	}()
	_, _ = io.WriteString(pw, `{"model":"m",`) // ... and nothing more
	// Meanwhile the one slot is free for others.
	resp, b := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("while a body trickles: %d %s", resp.StatusCode, b)
	}
	<-done
	if s := status.Load(); s != http.StatusRequestTimeout {
		t.Fatalf("slow body answered %d, want 408", s)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("the slow body took %v to time out", d)
	}
}
