package telemetry

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// recordSample records a known set of observations: route "a" configured
// for models m1 and m2 ("*" and "" are not labels), unrouted answers, a
// node, tenants.
func recordSample(t *testing.T, m *Metrics) (a *RouteStats) {
	t.Helper()
	a = m.Route("a")
	x := a.Models([]string{"m1", "m2", "*", ""})
	m1 := x.Lookup([]byte("m1"))
	m1.Observe(200, 30*time.Millisecond)
	m1.Observe(200, 30*time.Millisecond)
	m1.Observe(502, 2*time.Second)
	x.Lookup([]byte("not-configured")).Observe(200, time.Millisecond)
	x.Lookup(nil).Observe(404, time.Millisecond)
	m.Route("").Observe(404, time.Millisecond)
	a.Retry()
	a.Ejection()
	m1.FirstToken(120 * time.Millisecond)
	for range 3 {
		m1.InterToken(3 * time.Millisecond)
	}
	m1.Tokens(10, 5)
	m1.Tokens(-1, 2)
	m1.Tenant("team-a").Add(10, 5)
	m1.Tenant("team-b").Add(1, 0)
	n := m.Node("a", "node-1")
	n.Observe(200, 100*time.Millisecond)
	n.Observe(503, 300*time.Millisecond)
	n.FirstToken(100 * time.Millisecond)
	n.FirstToken(300 * time.Millisecond)
	return a
}

// TestMetricsExposition records known values, scrapes the real handler
// over loopback and reads every series back with expfmt.
func TestMetricsExposition(t *testing.T) {
	m, err := NewMetrics(WithBuildInfo(BuildInfo{Version: "v1.2.3", Revision: "abc123"}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	a := recordSample(t, m)
	fams := scrape(t, m)

	wantCounters := map[string]map[string]float64{
		"switchyard_gateway_requests_total": {
			"code=2xx,model=m1,route=a":    2,
			"code=5xx,model=m1,route=a":    1,
			"code=2xx,model=other,route=a": 1,
			"code=4xx,model=,route=a":      1,
			"code=4xx,model=,route=":       1,
		},
		"switchyard_gateway_tokens_total": {
			"model=m1,route=a,type=input":  10,
			"model=m1,route=a,type=output": 7,
		},
		"switchyard_gateway_tenant_tokens_total": {
			"model=m1,route=a,tenant=team-a,type=input":  10,
			"model=m1,route=a,tenant=team-a,type=output": 5,
			"model=m1,route=a,tenant=team-b,type=input":  1,
		},
		"switchyard_gateway_retries_total":   {"route=a": 1},
		"switchyard_gateway_ejections_total": {"route=a": 1},
		"switchyard_gateway_node_requests_total": {
			"code=2xx,node=node-1,route=a": 1,
			"code=5xx,node=node-1,route=a": 1,
		},
		"switchyard_build_info": {fmt.Sprintf("go_version=%s,revision=abc123,version=v1.2.3", runtime.Version()): 1},
	}
	for name, want := range wantCounters {
		got := series(t, fams, name)
		if len(got) != len(want) {
			t.Errorf("%s: %d series, want %d: %v", name, len(got), len(want), keys(got))
		}
		for l, v := range want {
			if s, ok := got[l]; !ok || value(s) != v {
				t.Errorf("%s{%s}: %v, want %v", name, l, got[l], v)
			}
		}
	}
	for _, h := range []struct {
		name, labels string
		count        uint64
		sum          float64
		buckets      map[float64]uint64 // le: cumulative count
	}{
		{"switchyard_gateway_request_duration_seconds", "model=m1,route=a", 3, 2.06, map[float64]uint64{0.025: 0, 0.05: 2, 1: 2, 2.5: 3}},
		{"switchyard_gateway_time_to_first_token_seconds", "model=m1,route=a", 1, 0.12, map[float64]uint64{0.1: 0, 0.15: 1, 60: 1}},
		{"switchyard_gateway_inter_token_latency_seconds", "model=m1,route=a", 3, 0.009, map[float64]uint64{0.0025: 0, 0.005: 3}},
	} {
		s, ok := series(t, fams, h.name)[h.labels]
		if !ok || s.GetHistogram() == nil {
			t.Errorf("%s{%s}: missing", h.name, h.labels)
			continue
		}
		hg := s.GetHistogram()
		if hg.GetSampleCount() != h.count || math.Abs(hg.GetSampleSum()-h.sum) > 1e-9 {
			t.Errorf("%s{%s}: count %d sum %v, want %d %v", h.name, h.labels, hg.GetSampleCount(), hg.GetSampleSum(), h.count, h.sum)
		}
		for _, b := range hg.GetBucket() {
			if want, ok := h.buckets[b.GetUpperBound()]; ok && b.GetCumulativeCount() != want {
				t.Errorf("%s{%s} le=%v: %d, want %d", h.name, h.labels, b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
	head, ok := series(t, fams, "switchyard_gateway_node_upstream_seconds")["node=node-1,route=a"]
	if !ok || head.GetSummary() == nil || head.GetSummary().GetSampleCount() != 2 || math.Abs(head.GetSummary().GetSampleSum()-0.4) > 1e-9 {
		t.Errorf("node upstream summary: %v", head)
	}
	node, ok := series(t, fams, "switchyard_gateway_node_time_to_first_token_seconds")["node=node-1,route=a"]
	if !ok || node.GetSummary() == nil || node.GetSummary().GetSampleCount() != 2 || math.Abs(node.GetSummary().GetSampleSum()-0.4) > 1e-9 || len(node.GetSummary().GetQuantile()) != 0 {
		t.Errorf("node TTFT summary: %v", node)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s: missing (Go runtime and process collectors)", name)
		}
	}
	if a.Answered() != 5 || a.Failed() != 1 || a.Cancelled() != 0 || a.Retries() != 1 || a.Ejections() != 1 {
		t.Errorf("route a: answered %d failed %d cancelled %d retries %d ejections %d", a.Answered(), a.Failed(), a.Cancelled(), a.Retries(), a.Ejections())
	}
}

func keys(m map[string]*dto.Metric) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestLabelSemantics: every request is counted once, so sum() over the
// route and model labels is the number of requests; route="" (answers
// before a route was chosen) appears only in the request counter and
// latency histogram, never as an "all routes" series.
func TestLabelSemantics(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	recordSample(t, m)
	b := m.Route("b").Models([]string{"m3"})
	b.Lookup([]byte("m3")).Observe(200, time.Millisecond)
	fams := scrape(t, m)
	var total float64
	for _, s := range series(t, fams, "switchyard_gateway_requests_total") {
		total += value(s)
	}
	if total != 7 {
		t.Fatalf("sum(requests_total) = %v, want the 7 requests made", total)
	}
	var histTotal uint64
	for _, s := range series(t, fams, "switchyard_gateway_request_duration_seconds") {
		histTotal += s.GetHistogram().GetSampleCount()
	}
	if histTotal != 7 {
		t.Fatalf("sum(request_duration_seconds_count) = %d, want 7", histTotal)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "switchyard_") || name == "switchyard_gateway_requests_total" || name == "switchyard_gateway_request_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == "" {
					t.Errorf("%s{%s}: a route=\"\" series", name, labels(s))
				}
			}
		}
	}
}

// TestModelIndex: configured names map to their own series, others to
// "other", none to ""; an index built for a new configuration shares the
// series, so counts survive a reload.
func TestModelIndex(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	r := m.Route("r")
	x1 := r.Models([]string{"llama", "*", "other"})
	for model, label := range map[string]string{"llama": "llama", "mistral": ModelOther, "": ModelNone, "*": ModelOther, "other": ModelOther, "LLAMA": ModelOther} {
		s := x1.Lookup([]byte(model))
		if s.Model() != label || s.Route() != "r" {
			t.Errorf("%q: series %q/%q, want %q", model, s.Route(), s.Model(), label)
		}
	}
	x2 := r.Models([]string{"llama", "qwen"})
	if x1.Lookup([]byte("llama")) != x2.Lookup([]byte("llama")) || x1.Lookup([]byte("x")) != x2.Lookup([]byte("x")) || x1.Lookup(nil) != x2.Lookup(nil) {
		t.Fatal("a new index does not share the route's series")
	}
	if x2.Lookup([]byte("qwen")).Model() != "qwen" || x1.Lookup([]byte("qwen")).Model() != ModelOther {
		t.Fatal("each index keeps its own configuration's names")
	}
}

// TestTenantBound: past the tenant limit, tenants share tenant="other".
func TestTenantBound(t *testing.T) {
	defer func(n int) { tenantLimit = n }(tenantLimit)
	tenantLimit = 3
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	ms := m.Route("r").Models(nil).Lookup(nil)
	for i := range 6 {
		ms.Tenant(fmt.Sprintf("t%d", i)).Add(1, 1)
	}
	t1 := ms.Tenant("t1")
	if ms.Tenant("t1") != t1 || ms.Tenant("t5") != ms.Tenant("t4") {
		t.Fatal("tenant lookups are not stable")
	}
	got := series(t, scrape(t, m), "switchyard_gateway_tenant_tokens_total")
	if v := got["model=,route=r,tenant=other,type=input"]; len(got) != 2*4 || v == nil || value(v) != 3 {
		t.Fatalf("tenant series: %v", keys(got))
	}
}

// TestNodeRelease: a node's series stay while a holder has it and leave
// the scrape when the last one releases it; a reacquired node starts
// again from 0 (a counter reset, as after a restart).
func TestNodeRelease(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	n1 := m.Node("r", "n")
	n2 := m.Node("r", "n") // a reloaded route holds the same node
	if n1 != n2 {
		t.Fatal("holders of one node do not share its stats")
	}
	n1.Observe(200, time.Millisecond)
	m.ReleaseNode(n1)
	if got := series(t, scrape(t, m), "switchyard_gateway_node_requests_total"); len(got) != 1 {
		t.Fatalf("after one release: %v", keys(got))
	}
	m.ReleaseNode(n2)
	if got := series(t, scrape(t, m), "switchyard_gateway_node_requests_total"); len(got) != 0 {
		t.Fatalf("after the last release: %v", keys(got))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("releasing a released node did not panic")
		}
	}()
	m.ReleaseNode(n2)
}

// TestOTelCardinality: instruments registered on Meter keep more than the
// OTel SDK's default 2000 series (a route of thousands of nodes).
func TestOTelCardinality(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	g, err := m.Meter().Int64ObservableGauge("switchyard_test_node_gauge")
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 3000
	attrs := make([]metric.ObserveOption, nodes)
	for i := range attrs {
		attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("node", fmt.Sprint(i))))
	}
	if _, err := m.Meter().RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i := range attrs {
			o.ObserveInt64(g, int64(i), attrs[i])
		}
		return nil
	}, g); err != nil {
		t.Fatal(err)
	}
	got := series(t, scrape(t, m), "switchyard_test_node_gauge")
	if len(got) != nodes {
		t.Fatalf("%d series, want %d", len(got), nodes)
	}
	for l := range got {
		if strings.Contains(l, "otel_metric_overflow") {
			t.Fatalf("overflow series %s", l)
		}
	}
}

// TestRecordWhileScraping: recording from many goroutines while scrapes
// run (go test -race) loses nothing.
func TestRecordWhileScraping(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	x := m.Route("r").Models([]string{"m"})
	n := m.Node("r", "n")
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := x.Lookup([]byte("m"))
			for i := range each {
				s.Observe(200, time.Millisecond)
				s.Tokens(1, 2)
				s.Tenant(fmt.Sprintf("t%d", (w+i)%3)).Add(1, 1)
				n.Observe(200, time.Millisecond)
			}
		}()
	}
	for range 5 {
		scrape(t, m)
	}
	wg.Wait()
	fams := scrape(t, m)
	if v := value(series(t, fams, "switchyard_gateway_requests_total")["code=2xx,model=m,route=r"]); v != workers*each {
		t.Fatalf("requests %v", v)
	}
	if v := value(series(t, fams, "switchyard_gateway_tokens_total")["model=m,route=r,type=output"]); v != 2*workers*each {
		t.Fatalf("output tokens %v", v)
	}
	var tenants float64
	for _, s := range series(t, fams, "switchyard_gateway_tenant_tokens_total") {
		tenants += value(s)
	}
	if tenants != 2*workers*each {
		t.Fatalf("tenant tokens %v", tenants)
	}
}
