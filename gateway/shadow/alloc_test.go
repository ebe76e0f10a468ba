//go:build !race

package shadow_test

import (
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// TestOfferDoesNotAllocateWhenSkipping: the request-path calls allocate
// nothing when the request is not sampled, too large, or the queue is full
// (the accepted path reuses pooled copies; see BenchmarkOffer).
func TestOfferDoesNotAllocateWhenSkipping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release := make(chan struct{})
	addr := serve(t, func(rc *fasthttp.RequestCtx) { <-release })
	t.Cleanup(func() { close(release) })

	var rc fasthttp.RequestCtx
	rc.Init(&fasthttp.Request{}, nil, nil)
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetBodyString(`{"messages":[]}`)
	req := ctxReq(&rc)

	cases := []struct {
		name  string
		setup func(*shadow.Config)
		fill  bool
	}{
		{"not sampled", func(c *shadow.Config) { c.SampleRate = 0 }, false},
		{"body too large", func(c *shadow.Config) { c.MaxBodyBytes = 4 }, false},
		{"queue full", func(c *shadow.Config) { c.QueueSize = 2; c.Concurrency = 1; c.CloseTimeout = 200 * time.Millisecond }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shadow.DefaultConfig()
			cfg.Target = "x"
			tc.setup(&cfg)
			m, err := shadow.New(ctx, cfg, newSender(t, "http://"+addr))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if tc.fill {
				for m.Live() < int64(cfg.QueueSize) {
					if m.Offer(req, nil) == nil {
						t.Fatal("dropped before the queue was full")
					}
				}
			}
			n := testing.AllocsPerRun(1000, func() {
				if h := m.Offer(req, nil); h != nil {
					t.Fatal("copy accepted")
				}
			})
			if n != 0 {
				t.Fatalf("Offer allocates %v per run", n)
			}
		})
	}
}
