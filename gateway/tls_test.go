package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/switchyard-dev/switchyard/engines/kserve"
	"github.com/switchyard-dev/switchyard/internal/testcert"
)

// TestTLSALPN: with a certificate the client port speaks TLS, HTTP/1.1 or
// HTTP/2 by ALPN, gRPC included.
func TestTLSALPN(t *testing.T) {
	be := backend(t, "b", nil)
	g := grpcBackend(t, "g")
	cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{HTTP: hostOf(be), GRPC: g}}})
	cfg.Listen.TLSCert, cfg.Listen.TLSKey = testcert.SelfSigned(t)
	gw := startGateway(t, cfg)
	tlsConf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // self-signed test certificate
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Post("https://"+gw.addr+"/v1/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		want := 1
		if h2 {
			want = 2
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != want || resp.Header.Get("X-Node") != "b" {
			t.Fatalf("TLS h2=%v: status %d proto %d node %q", h2, resp.StatusCode, resp.ProtoMajor, resp.Header.Get("X-Node"))
		}
	}
	cc, err := grpc.NewClient(gw.addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(kserve.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []byte
	if err := cc.Invoke(ctx, mInfer, kserve.InferRequest{ModelName: "m"}.Marshal(), &out); err != nil || !strings.HasPrefix(string(out), "g:") {
		t.Fatalf("gRPC over TLS: %v %q", err, out)
	}
}

// TestDrainingRetry: a node answering 503 is skipped and the request goes
// to another node; the draining node is excluded for a while.
func TestDrainingRetry(t *testing.T) {
	var drainingCalls atomic.Int32
	draining := backend(t, "draining", func(w http.ResponseWriter, r *http.Request) {
		drainingCalls.Add(1)
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(503)
	})
	live := backend(t, "live", nil)
	cfg := testConfig(staticRoute("m", draining.URL, live.URL))
	cfg.Routes[0].Breaker.OpenFor = time.Hour
	gw := startGateway(t, cfg)
	c := testClient()
	for i := 0; i < 20; i++ {
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "live" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := drainingCalls.Load(); n != 1 {
		t.Errorf("the draining node got %d requests; it should be excluded after its first 503", n)
	}
}

// TestQueueFullRetry: a node answering 429 (queue full) has the request
// retried on another node, and stays in rotation.
func TestQueueFullRetry(t *testing.T) {
	var fullCalls atomic.Int32
	full := backend(t, "full", func(w http.ResponseWriter, r *http.Request) {
		fullCalls.Add(1)
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(429)
	})
	live := backend(t, "live", nil)
	cfg := testConfig(staticRoute("m", full.URL, live.URL))
	cfg.Routes[0].Retries.BudgetPercent = 100 // half the requests meet the full node
	gw := startGateway(t, cfg)
	c := testClient()
	for i := 0; i < 20; i++ {
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "live" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := fullCalls.Load(); n < 2 {
		t.Errorf("the full node got %d requests; a 429 must not take it out of rotation", n)
	}
}

// TestClientCancel: a client that hangs up mid-request is counted as
// cancelled (499) and frees its slot.
func TestClientCancel(t *testing.T) {
	started := make(chan struct{}, 1)
	be := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 50; i++ {
			if _, err := io.WriteString(w, "data: x\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case started <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", gw.url("/v1/chat/completions"), strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	buf := make([]byte, 16)
	_, _ = resp.Body.Read(buf)
	cancel()
	resp.Body.Close()
	waitFor(t, 5*time.Second, "the slot to be freed", func() bool { return gw.g.InFlight() == 0 })
	r := gw.g.core.Routes().Route("m")
	if n := r.Stats().Cancelled(); n != 1 {
		t.Fatalf("cancelled requests counted: %d, want 1", n)
	}
}

// TestTLSStreamKeepAlive: over TLS, an HTTP/1.1 event stream (relayed on
// the hijacked connection) ends cleanly and its connection serves the
// client's next stream.
func TestTLSStreamKeepAlive(t *testing.T) {
	be := backend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Listen.TLSCert, cfg.Listen.TLSKey = testcert.SelfSigned(t)
	gw := startGateway(t, cfg)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed test certificate
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 2 {
		var reused bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+gw.addr+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 1 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Fatalf("stream %d: proto %d, %q, %v", i, resp.ProtoMajor, b, err)
		}
		if i == 1 && !reused {
			t.Fatal("the second stream did not reuse the first one's TLS connection")
		}
	}
}
