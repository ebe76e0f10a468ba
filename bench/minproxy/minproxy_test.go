package minproxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestProxiesInTurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ups []string
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
			c.SetBodyString(name + ":" + string(c.Path()) + ":" + string(c.PostBody()))
		}}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(func() { _ = s.Shutdown() })
		ups = append(ups, ln.Addr().String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, ups) }()
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + "/p")
		req.Header.SetMethod("POST")
		req.SetBodyString("x")
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		seen[string(resp.Body())]++
	}
	if seen["a:/p:x"] == 0 || seen["b:/p:x"] == 0 || seen["a:/p:x"]+seen["b:/p:x"] != 10 {
		t.Fatalf("answers %v", seen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), ln, nil); err == nil {
		t.Fatal("no upstreams: no error")
	}
}
