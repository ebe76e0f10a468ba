package shadow_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// promScraper serves an OTel meter provider through the Prometheus
// exporter, as the gateway does, and scrapes it over HTTP.
type promScraper struct {
	mp  *sdkmetric.MeterProvider
	url string
}

func newPromScraper(t *testing.T) *promScraper {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		srv.Close()
		_ = mp.Shutdown(context.Background())
	})
	return &promScraper{mp: mp, url: srv.URL}
}

// scrape GETs the exposition and returns every switchyard_shadow_ sample
// by series ("name{label=value,...}", labels sorted): counters' values,
// gauges' values, histograms' counts.
func (p *promScraper) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("scrape: %v\n%s", err, b)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "switchyard_shadow_") {
			continue
		}
		for _, m := range f.GetMetric() {
			key := seriesKey(name, m)
			if _, dup := out[key]; dup {
				t.Fatalf("series %s exported twice", key)
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// TestRegistryCountersSurviveReload: Mirrors built one after another for
// the same route with the same Registry (what a reload does, the new one
// built before the old one closes) keep adding to one set of series. At
// every Prometheus scrape — with the old and new Mirror both open, after
// the old one closed, after a reload that changes the config (another
// compare field, a body limit), after the route's last Mirror closed —
// no counter went down, each series is exported once, and the counters
// equal the totals over all Mirrors; Stats shows the same totals.
func TestRegistryCountersSurviveReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	primary := startSim(t, ctx, "primary", 8)
	candidate := startSim(t, ctx, "candidate", 12) // longer answers: content differs
	prom := newPromScraper(t)
	reg, err := shadow.NewRegistry(prom.mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	sender := newSender(t, candidate.URL())

	var cur atomic.Pointer[shadow.Mirror]
	pc := &fasthttp.HostClient{Addr: primary.Addr()}
	front := serve(t, func(rc *fasthttp.RequestCtx) { proxyHandler(pc, cur.Load())(rc) })
	send := func(body string) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + front + "/v1/chat/completions")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("request: %v %d", err, resp.StatusCode())
		}
	}
	const small = `{"messages":[{"role":"user","content":"hi"}]}`
	build := func(cfg shadow.Config) *shadow.Mirror {
		t.Helper()
		m, err := shadow.New(ctx, cfg, sender, shadow.WithRoute("chat"), shadow.WithRegistry(reg))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	last := map[string]float64{}
	// check scrapes, asserts that no series went down or vanished since
	// the last scrape, and that the series of want have those values.
	check := func(step string, want map[string]float64) {
		t.Helper()
		got := prom.scrape(t)
		for k, v := range last {
			if strings.HasPrefix(k, "switchyard_shadow_live") {
				continue // a gauge
			}
			if g, ok := got[k]; !ok || g < v {
				t.Errorf("%s: %s went from %v to %v (present %v)", step, k, v, g, ok)
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", step, k, got[k], v)
			}
		}
		if t.Failed() {
			t.Fatalf("%s: scrape %v", step, got)
		}
		last = got
	}
	const (
		offered  = "switchyard_shadow_offered_total{route=chat}"
		mirrored = "switchyard_shadow_mirrored_total{route=chat}"
		compared = "switchyard_shadow_compared_total{route=chat}"
		content  = "switchyard_shadow_field_mismatch_total{field=choices[0].message.content,route=chat}"
		modelF   = "switchyard_shadow_field_mismatch_total{field=model,route=chat}"
		tooLarge = "switchyard_shadow_dropped_total{reason=body_too_large,route=chat}"
		live     = "switchyard_shadow_live{route=chat}"
		latency  = "switchyard_shadow_latency_seconds{route=chat,side=shadow}"
	)

	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.Compare.Fields = []string{"choices[0].message.content"}
	m1 := build(cfg)
	cur.Store(m1)
	for range 4 {
		send(small)
	}
	waitFor(t, ctx, "4 comparisons", func() bool { return m1.Stats().Compared == 4 })
	check("first mirror", map[string]float64{offered: 4, mirrored: 4, compared: 4, content: 4, latency: 4, live: 0})

	// Reload, same config: the new Mirror is built while the old one is
	// still open; each series is still observed once.
	m2 := build(cfg)
	cur.Store(m2)
	check("old and new open", map[string]float64{offered: 4, mirrored: 4, compared: 4, content: 4})
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	check("old closed", map[string]float64{offered: 4, mirrored: 4, compared: 4, content: 4})
	for range 3 {
		send(small)
	}
	waitFor(t, ctx, "7 comparisons", func() bool { return m2.Stats().Compared == 7 })
	check("same config reloaded", map[string]float64{offered: 7, mirrored: 7, compared: 7, content: 7, latency: 7})

	// Reload, changed config: one more field, a body limit.
	cfg3 := cfg
	cfg3.Compare.Fields = []string{"model", "choices[0].message.content"}
	cfg3.MaxBodyBytes = 100
	m3 := build(cfg3)
	cur.Store(m3)
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	send(small)
	send(small)
	send(`{"messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`)
	waitFor(t, ctx, "9 comparisons", func() bool { return m3.Stats().Compared == 9 })
	check("changed config", map[string]float64{offered: 10, mirrored: 9, compared: 9, content: 9, modelF: 0, tooLarge: 1, latency: 9})
	st := m3.Stats()
	if st.Offered != 10 || st.Mirrored != 9 || st.DroppedBodyTooLarge != 1 || len(st.FieldMismatch) != 2 || st.FieldMismatch[0] != 0 || st.FieldMismatch[1] != 9 {
		t.Fatalf("Stats after two reloads: %+v", st)
	}

	// The route goes away: its counters keep their last values.
	if err := m3.Close(); err != nil {
		t.Fatal(err)
	}
	check("route removed", map[string]float64{offered: 10, mirrored: 9, compared: 9, content: 9, live: 0})
}

// TestMirrorWithoutRegistry: a Mirror given only a meter counts from 0
// and takes its series out of the export when it closes, so a second
// Mirror of the route on the same meter is the only one observed.
func TestMirrorWithoutRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	primary := startSim(t, ctx, "primary", 4)
	candidate := startSim(t, ctx, "candidate", 4)
	prom := newPromScraper(t)
	sender := newSender(t, candidate.URL())
	pc := &fasthttp.HostClient{Addr: primary.Addr()}
	const offered = "switchyard_shadow_offered_total{route=r}"
	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	for i, n := range []int{3, 2} {
		m, err := shadow.New(ctx, cfg, sender, shadow.WithRoute("r"), shadow.WithMeter(prom.mp.Meter("test")))
		if err != nil {
			t.Fatal(err)
		}
		front, stop := serveStoppable(t, proxyHandler(pc, m))
		for range n {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + front + "/v1/completions")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBodyString(`{"prompt":"p"}`)
			if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
		stop()
		if got := prom.scrape(t)[offered]; got != float64(n) {
			t.Fatalf("mirror %d: offered %v, want %d", i, got, n)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if v, ok := prom.scrape(t)[offered]; ok {
			t.Fatalf("mirror %d closed: offered still exported (%v)", i, v)
		}
	}
}
