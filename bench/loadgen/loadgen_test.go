package loadgen

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// serve starts a fasthttp server on loopback and returns its address.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { _ = s.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = s.Shutdown(); <-done })
	return ln.Addr().String()
}

func TestClosedLoopHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var hits atomic.Int64
	addr := serve(t, func(c *fasthttp.RequestCtx) {
		n := hits.Add(1)
		if n%10 == 0 {
			c.SetStatusCode(503)
			return
		}
		c.SetBodyString("ok")
	})
	res, err := Run(ctx, Config{Target: "http://" + addr + "/x", Concurrency: 4, Requests: 500, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 500 || res.OK+res.ErrorCount() != res.Sent || hits.Load() != 500 {
		t.Fatalf("sent %d ok %d errors %d server saw %d", res.Sent, res.OK, res.ErrorCount(), hits.Load())
	}
	if res.Errors["status-5xx"] != 50 || res.OK != 450 {
		t.Fatalf("errors %v ok %d, want 50 status-5xx and 450 ok", res.Errors, res.OK)
	}
	if res.Latency.Count() != 450 || res.RPS() <= 0 {
		t.Fatalf("latency count %d rps %v", res.Latency.Count(), res.RPS())
	}
}

func TestOpenLoopMeasuresFromIntendedTime(t *testing.T) {
	// One worker, a server that takes 50 ms, arrivals at 100/s: the
	// server sustains 20/s, so requests queue behind the worker and their
	// latency, measured from the intended send time, grows far beyond the
	// 50 ms service time. A closed-loop measurement would report ~50 ms.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := serve(t, func(c *fasthttp.RequestCtx) {
		time.Sleep(50 * time.Millisecond)
		c.SetBodyString("ok")
	})
	res, err := Run(ctx, Config{Target: "http://" + addr + "/", Rate: 100, Concurrency: 1, Requests: 20, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 {
		t.Fatalf("ok %d, errors %v", res.OK, res.Errors)
	}
	if min := res.Latency.Min(); min < int64(50*time.Millisecond) {
		t.Fatalf("min latency %v below the service time", time.Duration(min))
	}
	// 20 arrivals over ~0.2 s served one by one in 1 s: the last waits
	// about 0.8 s.
	if max := time.Duration(res.Latency.Max()); max < 500*time.Millisecond {
		t.Fatalf("max latency %v: the queueing delay was omitted", max)
	}
	if res.Late == 0 {
		t.Fatalf("no late sends reported")
	}
}

func TestSSEAndGRPCAgainstSim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := sim.Start(ctx, sim.Config{Model: "m", Profile: "h100", GRPCListen: "127.0.0.1:0",
		Override: sim.Profile{Prefill: 20 * time.Millisecond, PerToken: time.Millisecond, MaxTokens: 8}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	t.Run("sse", func(t *testing.T) {
		res, err := Run(ctx, Config{
			Target: node.URL() + "/v1/chat/completions", Protocol: SSE, Concurrency: 2, Requests: 20,
			Body: []byte(`{"model":"m","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 20 || res.TTFT.Count() != 20 {
			t.Fatalf("ok %d ttft %d errors %v", res.OK, res.TTFT.Count(), res.Errors)
		}
		if ttft := res.TTFT.Quantile(0.5); ttft < int64(20*time.Millisecond) || ttft > res.Latency.Quantile(0.5) {
			t.Fatalf("ttft p50 %v: want at least the 20 ms prefill and at most the latency %v", time.Duration(ttft), time.Duration(res.Latency.Quantile(0.5)))
		}
	})
	t.Run("grpc", func(t *testing.T) {
		res, err := Run(ctx, Config{Target: node.GRPCAddr(), Protocol: GRPC, Model: "m", Concurrency: 2, Requests: 20})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 20 {
			t.Fatalf("ok %d errors %v", res.OK, res.Errors)
		}
		bad, err := Run(ctx, Config{Target: node.GRPCAddr(), Protocol: GRPC, Model: "nope", Concurrency: 1, Requests: 3})
		if err != nil {
			t.Fatal(err)
		}
		if bad.OK != 0 || bad.ErrorCount() != 3 {
			t.Fatalf("unknown model: ok %d errors %v", bad.OK, bad.Errors)
		}
	})
}

func TestRefusedAndValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	res, err := Run(ctx, Config{Target: "http://" + addr + "/", Concurrency: 1, Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["refused"] != 3 {
		t.Fatalf("errors %v, want 3 refused", res.Errors)
	}
	cases := []Config{
		{Target: "http://10.1.2.3:80/"},
		{Target: "http://example.com:80/"},
		{Target: "ftp://127.0.0.1:21/"},
		{Target: "127.0.0.1:9", Protocol: "carrier-pigeon"},
		{Target: "http://127.0.0.1:80/", Rate: -1},
	}
	for _, c := range cases {
		if _, err := Run(ctx, c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if _, err := Run(ctx, Config{Target: "http://192.168.0.1:80/"}); !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), "192.168.0.1") {
		t.Errorf("non-loopback: %v", err)
	}
}
