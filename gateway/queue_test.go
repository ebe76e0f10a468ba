package gateway

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// TestClientTimeoutInQueue (issue 14): a full route's queue waits no
// longer than the client said it would (X-Switchyard-Timeout over HTTP,
// grpc-timeout for gRPC) when that is sooner than the route's
// queue.timeout (an hour here, beyond the test's own timeouts): the
// request gets its 503 queue_timeout (gRPC: UNAVAILABLE) with a
// Retry-After of whole seconds while the client still listens. A batch
// request waits queue.batch_timeout instead. A malformed timeout is a 400
// naming the header.
func TestClientTimeoutInQueue(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		release := make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		var arrived atomic.Int32
		be := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				return // the health checker's probes
			}
			arrived.Add(1)
			<-release
			_, _ = io.WriteString(w, "{}")
		})
		t.Cleanup(free) // before the backend's Close, which waits for its handlers
		cfg := testConfig(staticRoute("m", be.URL))
		cfg.Limits.MaxPerNode = 1
		cfg.Routes[0].Queue.Timeout = time.Hour
		cfg.Routes[0].Queue.BatchTimeout = 200 * time.Millisecond
		gw := startGateway(t, cfg)
		c := testClient()
		done := make(chan int, 1)
		go func() {
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
			done <- resp.StatusCode
		}()
		waitFor(t, 5*time.Second, "one request at the node", func() bool { return arrived.Load() == 1 })

		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`, "X-Switchyard-Timeout", "0.2")
		if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, body).Error.Code != "queue_timeout" {
			t.Fatalf("client timeout 0.2 s on a full route: %d %s", resp.StatusCode, body)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
		}
		// A batch request waits queue.batch_timeout, not queue.timeout.
		resp, body = post(t, c, gw.url("/v1/completions"), `{"model":"m"}`, "X-Switchyard-Priority", "batch")
		if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, body).Error.Code != "queue_timeout" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("batch request past queue.batch_timeout: %d %s", resp.StatusCode, body)
		}
		resp, body = post(t, c, gw.url("/v1/completions"), `{"model":"m"}`, "X-Switchyard-Timeout", "soon")
		if e := decodeError(t, body).Error; resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Message, "X-Switchyard-Timeout") {
			t.Fatalf("malformed client timeout: %d %s", resp.StatusCode, body)
		}
		free()
		if s := <-done; s != http.StatusOK {
			t.Fatalf("the request at the node: %d", s)
		}
	})
	t.Run("grpc", func(t *testing.T) {
		g := grpcBackend(t, "g")
		cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: g}}, AllowPaths: []string{mHang, mInfer}})
		cfg.Limits.MaxPerNode = 1
		cfg.Routes[0].Queue.Timeout = time.Hour
		gw := startGateway(t, cfg)
		hold, stop := context.WithCancel(context.Background())
		defer stop()
		held := make(chan error, 1)
		go func() {
			var out []byte
			held <- grpcClient(t, gw.addr).Invoke(hold, mHang, kserve.InferRequest{ModelName: "m"}.Marshal(), &out)
		}()
		q := gw.g.core.Routes().Route("m").Queue()
		waitFor(t, 5*time.Second, "the route full", func() bool { return q.InFlight() == 1 })

		// A raw gRPC call, so that grpc-timeout is the only deadline: a
		// gRPC client would also end the call itself at its deadline.
		c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
		call := func(timeout string) *http.Response {
			msg := kserve.InferRequest{ModelName: "m"}.Marshal()
			frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
			req, _ := http.NewRequest(http.MethodPost, gw.url(mInfer), strings.NewReader(string(append(frame, msg...))))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.Header.Set("Grpc-Timeout", timeout)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		resp := call("200m")
		if s := resp.Header.Get("Grpc-Status"); s != "14" {
			t.Fatalf("grpc-timeout 200m on a full route: grpc-status %q (%s), want 14 (UNAVAILABLE)", s, resp.Header.Get("Grpc-Message"))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
		}
		resp = call("200x")
		if s := resp.Header.Get("Grpc-Status"); s != "3" || !strings.Contains(resp.Header.Get("Grpc-Message"), "Grpc-Timeout") {
			t.Fatalf("malformed grpc-timeout: grpc-status %q (%s), want 3 (INVALID_ARGUMENT)", s, resp.Header.Get("Grpc-Message"))
		}
		stop()
		<-held
	})
}
