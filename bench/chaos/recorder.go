package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// recorder is an engine stand-in in the harness's process, for what the
// simulated engines cannot show: it records every request it gets (path,
// Host, Authorization) and answers OpenAI requests with hop-by-hop
// headers the gateway must strip, and any gRPC method (over h2c) with OK.
// As the probe app's node (HTTP and gRPC) it shows what reached an
// engine; as the target of forged nodes it must see nothing.
// Safe for concurrent use.
type recorder struct {
	name string
	addr string
	srv  *http.Server

	mu   sync.Mutex
	seen []seenRequest // guarded by mu
}

// seenRequest is one request as the recorder saw it.
type seenRequest struct {
	Method, Path, Host, Authorization string
}

// hopHeaders are the hop-by-hop headers the recorder answers with; the
// gateway must not pass them on (issue 12, item 7).
var hopHeaders = map[string]string{"Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive", "Upgrade": "h2c"}

func startRecorder(name string) (*recorder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &recorder{name: name, addr: ln.Addr().String()}
	var protos http.Protocols // HTTP/1.1 and h2c: it is the probe app's gRPC node too
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second, Protocols: &protos}
	go func() { _ = r.srv.Serve(ln) }() // owned by r: ends with close
	return r, nil
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
	if req.URL.Path == "/health" {
		return // 200: health checks are not recorded
	}
	r.mu.Lock()
	r.seen = append(r.seen, seenRequest{req.Method, req.URL.Path, req.Host, req.Header.Get("Authorization")})
	r.mu.Unlock()
	h := w.Header()
	h.Set("X-Sim-Node", r.name)
	if strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc") {
		// Any gRPC method: an empty message and status OK (what a
		// forwarded control method would get shows in requests()).
		h.Set("Content-Type", "application/grpc")
		h.Set("Trailer", "Grpc-Status")
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		h.Set("Grpc-Status", "0")
		return
	}
	if req.Method != http.MethodPost || (req.URL.Path != "/v1/chat/completions" && req.URL.Path != "/v1/completions") {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	for k, v := range hopHeaders {
		h.Set(k, v)
	}
	h.Set("X-Kept", "yes")
	h.Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"rec-1","object":"chat.completion","model":"probe","choices":[{"index":0,"message":{"role":"assistant","content":"recorded"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

// requests returns what the recorder saw so far.
func (r *recorder) requests() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.seen...)
}

func (r *recorder) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.srv.Close()
}
