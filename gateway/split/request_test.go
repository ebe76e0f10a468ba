package split_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

// serve runs h on a loopback listener until the test ends.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return ln.Addr().String()
}

// TestSplitThroughProxy runs a small fasthttp proxy that splits between two
// simulated engines and checks stickiness, the override header, the response
// header, cookies and the exported metrics.
func TestSplitThroughProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Two simulated engines, one per variant's app.
	backends := map[string]*fasthttp.HostClient{}
	nodes := map[string]*sim.Node{}
	for _, name := range []string{"app-a", "app-b"} {
		n, err := sim.Start(ctx, sim.Config{ID: name, Model: "m", Override: sim.Profile{Prefill: time.Millisecond, PerToken: 100 * time.Microsecond, MaxTokens: 2}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		nodes[name] = n
		backends[name] = &fasthttp.HostClient{Addr: n.Addr()}
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	cfg := split.DefaultConfig()
	cfg.Variants = split.Variants{{Name: "a", Weight: 50, Target: "app-a"}, {Name: "b", Weight: 50, Target: "app-b"}}
	cfg.Key = split.KeyConfig{Header: "X-User-ID", Cookie: "uid"}
	s := mustNew(t, cfg, split.WithMeter(mp.Meter("test")), split.WithRoute("chat"))

	front := serve(t, func(rc *fasthttp.RequestCtx) {
		start := time.Now()
		a := s.AssignRequest(ctxRequest{rc})
		v := s.Variant(a.Index)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		err := backends[v.Target].DoTimeout(&rc.Request, resp, 5*time.Second)
		if err != nil {
			rc.SetStatusCode(fasthttp.StatusBadGateway)
		} else {
			resp.CopyTo(&rc.Response)
		}
		rc.Response.Header.SetBytesKV(s.VariantHeader(), v.NameBytes())
		rc.Response.SetBodyString(string(rc.Response.Header.Peek(sim.NodeHeader)))
		rc.Response.Header.Set("X-Source", a.Source.String())
		s.Record(a.Index, split.Result{Status: rc.Response.StatusCode(), Err: err != nil, Latency: time.Since(start), Tokens: 3})
	})
	client := &fasthttp.HostClient{Addr: front}

	do := func(setup func(*fasthttp.Request)) (variant, body, source string, status int) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + front + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.SetBodyString(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
		setup(req)
		if err := client.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return string(resp.Header.Peek(split.DefaultVariantHeader)), string(resp.Body()), string(resp.Header.Peek("X-Source")), resp.StatusCode()
	}

	// Sticky: every user sees the same variant on every request, and the
	// backend that answered is the variant's target.
	seen := map[string]int{}
	for u := 0; u < 40; u++ {
		id := "user-" + strconv.Itoa(u)
		first, _, _, _ := do(func(r *fasthttp.Request) { r.Header.Set("X-User-ID", id) })
		for k := 0; k < 3; k++ {
			v, body, src, _ := do(func(r *fasthttp.Request) { r.Header.Set("X-User-ID", id) })
			if v != first || body != "app-"+v || src != "header" {
				t.Fatalf("user %s: variant %q body %q source %q, first variant %q", id, v, body, src, first)
			}
		}
		seen[first]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("40 users all on one variant: %v", seen)
	}

	// Cookie key, when the header is absent.
	v1, _, src, _ := do(func(r *fasthttp.Request) { r.Header.SetCookie("uid", "user-7") })
	v2, _, _, _ := do(func(r *fasthttp.Request) { r.Header.Set("X-User-ID", "user-7") })
	if src != "cookie" || v1 != v2 {
		t.Fatalf("cookie key: variant %q source %q, header key variant %q", v1, src, v2)
	}

	// No header and no cookie: the client address, stable across requests.
	va, _, src, _ := do(func(*fasthttp.Request) {})
	vb, _, _, _ := do(func(*fasthttp.Request) {})
	if src != "addr" || va != vb {
		t.Fatalf("addr key: %q/%q source %q", va, vb, src)
	}

	// Override forces either variant; an unknown one is ignored and counted.
	for _, want := range []string{"a", "b"} {
		v, body, src, _ := do(func(r *fasthttp.Request) {
			r.Header.Set("X-User-ID", "user-1")
			r.Header.Set(split.DefaultOverrideHeader, want)
		})
		if v != want || body != "app-"+want || src != "override" {
			t.Fatalf("override %q: got variant %q body %q source %q", want, v, body, src)
		}
	}
	_, _, src, _ = do(func(r *fasthttp.Request) { r.Header.Set(split.DefaultOverrideHeader, "nope") })
	if src == "override" || s.OverridesRejected() != 1 {
		t.Fatalf("unknown override: source %q, rejected %d", src, s.OverridesRejected())
	}

	// An error on b is counted against b.
	nodes["app-b"].Fail(sim.ModeError)
	_, _, _, st := do(func(r *fasthttp.Request) { r.Header.Set(split.DefaultOverrideHeader, "b") })
	nodes["app-b"].Fail(sim.ModeHealthy)
	if st != fasthttp.StatusInternalServerError {
		t.Fatalf("status %d", st)
	}

	stats := s.Stats()
	var total int64
	for _, st := range stats {
		total += st.Requests
		if st.Tokens != 3*st.Requests || st.LatencySum <= 0 {
			t.Fatalf("stats %+v", st)
		}
	}
	const sent = 40*4 + 2 + 2 + 2 + 1 + 1
	if total != sent || stats[0].Errors != 0 || stats[1].Errors != 1 {
		t.Fatalf("stats %+v, want %d requests and one error on b", stats, sent)
	}

	// The OTel instruments export the same numbers.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	hist := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					v, _ := p.Attributes.Value("variant")
					r, _ := p.Attributes.Value("route")
					if r.AsString() != "chat" {
						t.Fatalf("%s: route attribute %q", m.Name, r.AsString())
					}
					got[m.Name+"/"+v.AsString()] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					v, _ := p.Attributes.Value("variant")
					hist[m.Name+"/"+v.AsString()] += p.Count
				}
			}
		}
	}
	for i, st := range stats {
		name := []string{"a", "b"}[i]
		if got["switchyard.split.requests/"+name] != st.Requests || got["switchyard.split.errors/"+name] != st.Errors ||
			got["switchyard.split.tokens/"+name] != st.Tokens || hist["switchyard.split.latency/"+name] != uint64(st.Requests) {
			t.Fatalf("exported %v %v, stats %+v", got, hist, st)
		}
	}
	if got["switchyard.split.override_rejected/"] != 1 {
		t.Fatalf("override_rejected exported %v", got)
	}
}
