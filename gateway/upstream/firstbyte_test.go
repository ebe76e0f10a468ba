package upstream

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

func testNode(t *testing.T, addr string) *Node {
	t.Helper()
	cfg := &Config{Route: "r", Timeouts: config.Timeouts{Connect: time.Second, FirstByte: 5 * time.Second, Idle: 5 * time.Second},
		Breaker: config.BreakerConfig{Failures: 5, OpenFor: time.Second, ProbeTimeout: time.Second}, MaxConns: 8, MaxResponseBytes: 1 << 20}
	n := New(addr, balancer.Address{HTTP: addr, GRPC: addr}, cfg)
	t.Cleanup(n.Close)
	return n
}

func get(n *Node, path string, deadline time.Time, call *Call) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + n.Addr().HTTP + path)
	err := n.Do(call, req, resp, deadline)
	return resp.StatusCode(), err
}

// TestFirstByteRecord drives the record through real exchanges: answers
// count with their time, 5xx as failures; an exchange that hangs makes
// the node silent while it waits, and its abandonment (Abort) is not
// the node's failure and does not make it heard from.
func TestFirstByteRecord(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	n := testNode(t, strings.TrimPrefix(srv.URL, "http://"))
	if s := n.TakeFirstByte(time.Now(), 0); s != (FirstByteStats{}) || !n.LastAnswer().IsZero() {
		t.Fatalf("fresh node: %+v, last answer %v", s, n.LastAnswer())
	}
	for _, path := range []string{"/a", "/b", "/fail"} {
		var call Call
		sent := time.Now()
		st, err := get(n, path, sent.Add(5*time.Second), &call)
		n.ObserveFirstByte(sent, st, err)
	}
	s := n.TakeFirstByte(time.Now(), 0)
	if s.OK != 2 || s.Failed != 1 || s.SumOK <= 0 || s.Waiting != 0 || s.Silent != 0 {
		t.Fatalf("after two answers and a 500: %+v", s)
	}
	if a := n.LastAnswer(); a.IsZero() || time.Since(a) > 5*time.Second {
		t.Fatalf("last answer %v", a)
	}
	if s := n.TakeFirstByte(time.Now(), 0); s.OK != 0 || s.Failed != 0 || s.SumOK != 0 {
		t.Fatalf("a take resets the counts: %+v", s)
	}

	h := testNode(t, silentNode(t)) // a node that accepts and never answers
	var call Call
	done := make(chan error, 1)
	sent := time.Now()
	go func() {
		_, err := get(h, "/", sent.Add(30*time.Second), &call)
		h.ObserveFirstByte(sent, 0, err)
		done <- err
	}()
	// The exchange is counted when Do starts; poll for it (another
	// goroutine), then look two seconds ahead with an injected time.
	deadline := time.Now().Add(10 * time.Second)
	for h.fb.waiting.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the exchange was never counted as waiting")
		}
		time.Sleep(time.Millisecond)
	}
	s = h.TakeFirstByte(time.Now().Add(2*time.Second), 1)
	if s.Waiting != 1 || s.Silent < 2*time.Second || s.Silent > 3*time.Second {
		t.Fatalf("hung exchange, 2 s later: %+v", s)
	}
	if s := h.TakeFirstByte(time.Now().Add(2*time.Second), 0); s.Waiting != 0 || s.Silent != 0 {
		t.Fatalf("with nothing in flight by the balancer's count the node is never silent: %+v", s)
	}
	call.Abort()
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Fatalf("aborted exchange: %v", err)
	}
	if s := h.TakeFirstByte(time.Now(), 1); s.Failed != 0 || s.OK != 0 || s.Waiting != 0 || !h.LastAnswer().IsZero() {
		t.Fatalf("after the abort: %+v, last answer %v", s, h.LastAnswer())
	}
}

// TestFirstByteWaitingNeverNegative: an attempt observed without having
// begun (a gRPC attempt that failed before it was sent) leaves waiting at
// zero, and waiting is capped by the balancer's in-flight count.
func TestFirstByteWaitingNeverNegative(t *testing.T) {
	n := testNode(t, "127.0.0.1:9")
	n.ObserveFirstByte(time.Now(), 0, errors.New("bad request"))
	if w := n.fb.waiting.Load(); w != 0 {
		t.Fatalf("waiting %d", w)
	}
	for range 3 {
		n.fb.begin()
	}
	if s := n.TakeFirstByte(time.Now(), 2); s.Waiting != 2 || s.Failed != 1 {
		t.Fatalf("three begun, two in flight: %+v", s)
	}
	n.TakeFirstByte(time.Now(), 0)
	if w := n.fb.waiting.Load(); w != 0 {
		t.Fatalf("nothing in flight: waiting %d, want it cleared", w)
	}
}

// TestForgetBefore: answers to exchanges sent before the cut count no
// more, later ones do, and every answer still counts as heard from.
func TestForgetBefore(t *testing.T) {
	n := testNode(t, "127.0.0.1:9")
	old := time.Now().Add(-time.Minute)
	n.ObserveFirstByte(old, 200, nil)
	n.ForgetBefore(time.Now().Add(-time.Second))
	n.ObserveFirstByte(old, 200, nil)
	n.ObserveFirstByte(old, 500, nil)
	if s := n.TakeFirstByte(time.Now(), 0); s.OK != 0 || s.Failed != 0 || s.SumOK != 0 {
		t.Fatalf("exchanges sent before the cut counted: %+v", s)
	}
	if a := n.LastAnswer(); time.Since(a) > 5*time.Second {
		t.Fatalf("an answer to an old exchange is still an answer: last answer %v", a)
	}
	n.ObserveFirstByte(time.Now(), 200, nil)
	if s := n.TakeFirstByte(time.Now(), 0); s.OK != 1 {
		t.Fatalf("an exchange sent after the cut: %+v", s)
	}
}
