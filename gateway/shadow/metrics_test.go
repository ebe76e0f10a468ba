package shadow_test

import (
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// TestMetricsExported: the counters and latency histograms reach an OTel
// reader with the route, reason, field and side attributes.
func TestMetricsExported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	primary := startSim(t, ctx, "primary", 8)
	candidate := startSim(t, ctx, "candidate", 12)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.MaxBodyBytes = 100
	cfg.Compare.Fields = []string{"choices[0].message.content", "model"}
	m, err := shadow.New(ctx, cfg, newSender(t, candidate.URL()), shadow.WithRoute("chat"), shadow.WithMeter(mp.Meter("test")))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	front := serve(t, proxyHandler(&fasthttp.HostClient{Addr: primary.Addr()}, m))
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"a"}]}`,
		`{"messages":[{"role":"user","content":"b"}]}`,
		`{"messages":[{"role":"user","content":"b"}],"padding":"` + string(make([]byte, 100)) + `"}`,
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + front + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "comparisons", func() bool { return m.Stats().Compared == 2 })

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			switch d := md.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if r, _ := p.Attributes.Value("route"); r.AsString() != "chat" {
						t.Fatalf("%s without route", md.Name)
					}
					key := md.Name
					for _, a := range []string{"reason", "field"} {
						if v, ok := p.Attributes.Value(attrKey(a)); ok {
							key += "{" + v.AsString() + "}"
						}
					}
					got[key] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					side, _ := p.Attributes.Value("side")
					got[md.Name+"{"+side.AsString()+"}"] = int64(p.Count)
				}
			}
		}
	}
	want := map[string]int64{
		"switchyard.shadow.offered":                                    3,
		"switchyard.shadow.mirrored":                                   2,
		"switchyard.shadow.dropped{body_too_large}":                    1,
		"switchyard.shadow.dropped{queue_full}":                        0,
		"switchyard.shadow.errors{timeout}":                            0,
		"switchyard.shadow.compared":                                   2,
		"switchyard.shadow.status_mismatch":                            0,
		"switchyard.shadow.field_mismatch{choices[0].message.content}": 2,
		"switchyard.shadow.field_mismatch{model}":                      0,
		"switchyard.shadow.latency{primary}":                           2,
		"switchyard.shadow.latency{shadow}":                            2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("exported: %v", got)
	}
}

func attrKey(s string) attribute.Key { return attribute.Key(s) }
