package shadow_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// BenchmarkPrimaryLatency measures the primary's latency seen by clients
// of a real fasthttp proxy (proxyHandler: forward to a simulated engine,
// offer the request to the Mirror, hand the response over) without a
// mirror ("baseline") and with 100 % shadowing to a target ten times
// slower that also hangs for 300 ms out of every second ("shadow100").
// b.N requests per mode are sent by 4 concurrent clients in rounds of 250
// that alternate between the modes, so drifting load from other processes hits
// both alike; each shadow round closes its Mirror, so its background work
// does not leak into the next baseline round. Reported: p50/p99 per mode
// in ms, their ratio, the time the request path spent inside the Mirror's
// calls (Offer + FinishResponse, p50/p99 in µs: what the mirror adds to
// the primary besides CPU contention), and how many copies were mirrored,
// dropped, and failed (timeouts against the hanging shadow).
//
//	go test -run '^$' -bench PrimaryLatency -benchtime 2000x -count 3 ./gateway/shadow
func BenchmarkPrimaryLatency(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	primary := startSim(b, ctx, "primary", 8)
	candidate := startSim(b, ctx, "candidate", 8)
	candidate.SetSlowdown(10)

	// The shadow hangs now and then: 300 ms of every second, longer than
	// the shadow Timeout (200 ms), so some copies time out.
	hctx, hstop := context.WithCancel(ctx)
	var hwg sync.WaitGroup
	hwg.Add(1)
	go func() {
		defer hwg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-hctx.Done():
				candidate.Fail(sim.ModeHealthy)
				return
			case <-t.C:
				// Only on transitions: any Fail call releases hung requests.
				switch i % 10 {
				case 0:
					candidate.Fail(sim.ModeHang)
				case 3:
					candidate.Fail(sim.ModeHealthy)
				}
			}
		}
	}()
	defer func() { hstop(); hwg.Wait() }()

	primaryClient := &fasthttp.HostClient{Addr: primary.Addr(), MaxConns: 512}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"how fast is the primary?"}]}`)
	// Short alternating rounds (250 requests per mode each) so bursts of
	// load from other processes on the machine hit both modes alike.
	const clients = 4
	rounds := max(1, b.N/250)
	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.SampleRate = 100
	cfg.QueueSize = 64
	cfg.Concurrency = 8
	cfg.Timeout = 200 * time.Millisecond
	cfg.CloseTimeout = time.Second
	cfg.Compare.Fields = chatFields
	sender := newSender(b, candidate.URL())
	var costMu sync.Mutex
	var costs []time.Duration // time inside Offer + FinishResponse per request

	// run sends n requests through a fresh proxy (with a Mirror when
	// mirror is set) and returns their latencies.
	run := func(n int, mirror bool) ([]time.Duration, shadow.Stats) {
		var m *shadow.Mirror
		if mirror {
			var err error
			if m, err = shadow.New(ctx, cfg, sender); err != nil {
				b.Fatal(err)
			}
		}
		var cost func(time.Duration)
		if mirror {
			cost = func(d time.Duration) { costMu.Lock(); costs = append(costs, d); costMu.Unlock() }
		}
		ln, stopFront := serveStoppable(b, proxyHandlerCost(primaryClient, m, cost))
		defer stopFront()
		lat := make([]time.Duration, n)
		var next sync.WaitGroup
		var idx = make(chan int, n)
		for i := 0; i < n; i++ {
			idx <- i
		}
		close(idx)
		for c := 0; c < clients; c++ {
			next.Add(1)
			go func() {
				defer next.Done()
				client := &fasthttp.HostClient{Addr: ln}
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + ln + "/v1/chat/completions")
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.SetBody(body)
				for i := range idx {
					t0 := time.Now()
					if err := client.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
						b.Errorf("primary: status %d err %v", resp.StatusCode(), err)
						return
					}
					lat[i] = time.Since(t0)
				}
			}()
		}
		next.Wait()
		var st shadow.Stats
		if m != nil {
			_ = m.Close()
			st = m.Stats()
		}
		return lat, st
	}

	per := b.N / rounds
	if per < 1 {
		per = 1
	}
	var base, shad []time.Duration
	var total shadow.Stats
	b.ReportAllocs()
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		l, _ := run(per, false)
		base = append(base, l...)
		l, st := run(per, true)
		shad = append(shad, l...)
		total.Mirrored += st.Mirrored
		total.DroppedQueueFull += st.DroppedQueueFull
		total.DroppedClosed += st.DroppedClosed
		total.ErrorsTimeout += st.Errors()
	}
	b.StopTimer()
	q := func(all []time.Duration, p float64) float64 {
		s := append([]time.Duration(nil), all...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(p*float64(len(s)-1))]) / 1e6
	}
	b.ReportMetric(q(base, 0.50), "base-p50-ms")
	b.ReportMetric(q(base, 0.99), "base-p99-ms")
	b.ReportMetric(q(shad, 0.50), "shadow-p50-ms")
	b.ReportMetric(q(shad, 0.99), "shadow-p99-ms")
	b.ReportMetric(q(shad, 0.99)/q(base, 0.99), "p99-ratio")
	b.ReportMetric(float64(q(costs, 0.50))*1e3, "mirror-call-p50-us")
	b.ReportMetric(float64(q(costs, 0.99))*1e3, "mirror-call-p99-us")
	b.ReportMetric(float64(total.Mirrored), "mirrored")
	b.ReportMetric(float64(total.DroppedQueueFull+total.DroppedClosed), "dropped")
	b.ReportMetric(float64(total.ErrorsTimeout), "shadow-errors")
}

// BenchmarkOffer is the cost Offer and FinishResponse add to the request
// path when the copy is accepted (the shadow is a local fast server).
func BenchmarkOffer(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr := serve(b, func(rc *fasthttp.RequestCtx) { rc.SetBodyString(`{"v":1}`) })
	for _, rate := range []float64{0, 100} {
		b.Run(map[float64]string{0: "not-sampled", 100: "sampled"}[rate], func(b *testing.B) {
			cfg := shadow.DefaultConfig()
			cfg.Target = "x"
			cfg.SampleRate = rate
			cfg.QueueSize = 1024
			m, err := shadow.New(ctx, cfg, newSender(b, "http://"+addr))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var rc fasthttp.RequestCtx
			rc.Init(&fasthttp.Request{}, nil, nil)
			rc.Request.SetRequestURI("/v1/chat/completions")
			rc.Request.Header.SetMethod("POST")
			rc.Request.SetBodyString(`{"model":"m","messages":[{"role":"user","content":"hello there"}]}`)
			rc.Response.SetBodyString(`{"v":1}`)
			b.ReportAllocs()
			for b.Loop() {
				h := m.Offer(ctxReq(&rc), nil)
				finishResponse(h, &rc.Response, time.Millisecond)
			}
		})
	}
}
