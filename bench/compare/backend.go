package compare

import (
	"context"
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
)

// Reply is what the backends answer to every request: a small
// non-streaming chat completion, so the comparison measures the proxies,
// not the backends.
const Reply = `{"id":"cmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}`

// Request is the body the load generator sends.
const Request = `{"model":"bench","messages":[{"role":"user","content":"hello"}],"max_tokens":1}`

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
