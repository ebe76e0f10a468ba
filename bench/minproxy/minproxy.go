// Package minproxy is the smallest reasonable fasthttp reverse proxy: the
// baseline of the proxy comparison (issue 7), which Switchyard's gateway
// should reach at least 0.9× of. It forwards every request to its upstreams
// in turn over kept-alive connections and copies the answer back; no
// routing, retries or telemetry.
//
// Serve owns its server and returns when ctx is done or the listener fails.
package minproxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Handler returns a handler that proxies to upstreams (host:port) in turn.
func Handler(upstreams []string) fasthttp.RequestHandler {
	lb := &fasthttp.LBClient{Timeout: 10 * time.Second}
	for _, u := range upstreams {
		lb.Clients = append(lb.Clients, &fasthttp.HostClient{Addr: u, MaxConns: 4096, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	}
	return func(ctx *fasthttp.RequestCtx) {
		req := &ctx.Request
		req.Header.Del("Connection")
		if err := lb.Do(req, &ctx.Response); err != nil {
			ctx.Error("minproxy: "+err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Header.Del("Connection")
	}
}

// Serve proxies requests accepted on ln to upstreams until ctx is done.
func Serve(ctx context.Context, ln net.Listener, upstreams []string) error {
	if len(upstreams) == 0 {
		return fmt.Errorf("minproxy: no upstreams")
	}
	s := &fasthttp.Server{Handler: Handler(upstreams), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("minproxy: serve: %w", err)
	case <-ctx.Done():
		_ = s.Shutdown()
		<-errc
		return nil
	}
}
