package compare

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// Reply is what the backends answer to every request: a small
// non-streaming chat completion, so the comparison measures the proxies,
// not the backends.
const Reply = `{"id":"cmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}`

// Request is the body the load generator sends by default.
const Request = `{"model":"bench","messages":[{"role":"user","content":"hello"}],"max_tokens":1}`

// RequestBody is Request with its message's content padded with words so
// that the body is n bytes long (Config.BodyBytes); Request itself when n
// is not larger.
func RequestBody(n int) []byte {
	const head, tail = `{"model":"bench","messages":[{"role":"user","content":"hello`, `"}],"max_tokens":1}`
	if n <= len(Request) {
		return []byte(Request)
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	for pad := n - len(head) - len(tail); pad > 0; {
		w := " lorem ipsum dolor"[:min(pad, 18)]
		b = append(b, w...)
		pad -= len(w)
	}
	return append(b, tail...)
}

// GRPCModel is the model name the gRPC load asks for (the gateway routes
// it to the gRPC backend; the backend answers any name).
const GRPCModel = "bench-grpc"

// StartBackend starts a minimal-latency backend on loopback and returns its
// address. It stops when ctx is done.
func StartBackend(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("compare: backend: %w", err)
	}
	s := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.SetContentType("application/json")
			c.SetBodyString(Reply)
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
	}
	go func() { _ = s.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = s.Shutdown()
	}()
	return ln.Addr().String(), nil
}

// StartH2CBackend starts a backend that answers Reply over h2c (HTTP/2
// with prior knowledge, net/http's server) and HTTP/1.1, for the "direct"
// row of the HTTP/2 section: the proxies talk HTTP/1.1 to the fasthttp
// backends (nginx cannot speak h2c upstream), so this one is only the
// load generator's h2c ceiling. It stops when ctx is done.
func StartH2CBackend(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("compare: h2c backend: %w", err)
	}
	reply := []byte(Reply)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(reply)
		}),
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000},
	}
	go func() { _ = s.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	return ln.Addr().String(), nil
}

// StartGRPCBackend starts a KServe v2 gRPC backend (grpc-go) whose
// ModelInfer answers one fixed InferResponse at once, whatever it is
// asked. It stops when ctx is done.
func StartGRPCBackend(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("compare: grpc backend: %w", err)
	}
	reply := kserve.InferResponse{
		ModelName: GRPCModel, ID: "bench",
		Outputs: []kserve.Tensor{{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte("ok")}}},
	}.Marshal()
	s := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.MaxConcurrentStreams(1000))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: kserve.Service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "ModelInfer",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var b []byte
				if err := dec(&b); err != nil {
					return nil, err
				}
				return reply, nil
			},
		}},
	}, struct{}{})
	go func() { _ = s.Serve(ln) }()
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	return ln.Addr().String(), nil
}
