package resource_test

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard-dev/switchyard/discovery"
)

// scrape reads an instance's /metrics and parses it.
func scrape(t *testing.T, ctx context.Context, addr, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value returns the value of name's series whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsExposition: the Resource's metrics come from the OTel SDK
// through the Prometheus exporter (issue 15) under the names of the
// hand-written exposition they replaced, with live values.
func TestMetricsExposition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	servers := addrs(lns)
	in := startInstance(t, lns[0], baseConfig(nil))
	startAgent(t, agentConfig(servers, "llama", "m0", 9700))
	startAgent(t, agentConfig(servers, "llama", "m1", 9701))
	w := startWatcher(t, servers, "llama", nil)
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 2 }); err != nil {
		t.Fatal(err)
	}
	in.srv.Rejections().Add(discovery.ReasonForbidden)
	fams := scrape(t, ctx, in.addr, testToken)
	stable := map[string]dto.MetricType{
		"switchyard_resource_heartbeats_total":            dto.MetricType_COUNTER,
		"switchyard_resource_http_heartbeats_total":       dto.MetricType_COUNTER,
		"switchyard_resource_stale_heartbeats_total":      dto.MetricType_COUNTER,
		"switchyard_resource_rejections_total":            dto.MetricType_COUNTER,
		"switchyard_resource_commits_total":               dto.MetricType_COUNTER,
		"switchyard_resource_changes_total":               dto.MetricType_COUNTER,
		"switchyard_resource_peer_changes_sent_total":     dto.MetricType_COUNTER,
		"switchyard_resource_peer_changes_dropped_total":  dto.MetricType_COUNTER,
		"switchyard_resource_peer_changes_received_total": dto.MetricType_COUNTER,
		"switchyard_resource_expired_total":               dto.MetricType_COUNTER,
		"switchyard_resource_guard_held_total":            dto.MetricType_COUNTER,
		"switchyard_resource_agent_connections":           dto.MetricType_GAUGE,
		"switchyard_resource_watches":                     dto.MetricType_GAUGE,
		"switchyard_resource_peers_connected":             dto.MetricType_GAUGE,
		"switchyard_resource_nodes":                       dto.MetricType_GAUGE,
		"switchyard_resource_list_version":                dto.MetricType_GAUGE,
		"switchyard_resource_subscribers":                 dto.MetricType_GAUGE,
		"switchyard_resource_apps":                        dto.MetricType_GAUGE,
		"switchyard_resource_apps_freed_total":            dto.MetricType_COUNTER,
		"switchyard_resource_credential_reloads_total":    dto.MetricType_COUNTER,
		// The Go runtime and process collectors, as on the gateway.
		"go_goroutines":                 dto.MetricType_GAUGE,
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
	}
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for name, typ := range stable {
		f := fams[name]
		if f == nil {
			t.Errorf("%s missing (exported: %v)", name, names)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"switchyard_resource_heartbeats_total", nil, 2},
		{"switchyard_resource_agent_connections", nil, 2},
		{"switchyard_resource_nodes", map[string]string{"app": "llama", "state": "ready"}, 2},
		{"switchyard_resource_subscribers", map[string]string{"app": "llama"}, 1},
		{"switchyard_resource_list_version", map[string]string{"app": "llama"}, 1},
		{"switchyard_resource_rejections_total", map[string]string{"reason": "forbidden"}, 1},
		{"switchyard_resource_apps", nil, 1},
	}
	for _, c := range checks {
		v, ok := value(fams, c.name, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want ≥ %v", c.name, c.labels, v, ok, c.min)
		}
	}
	if v, ok := value(fams, "switchyard_resource_rejections_total", map[string]string{"reason": "bad_token"}); !ok || v != 0 {
		t.Errorf("every reason has its series, 0 included: bad_token %v %v", v, ok)
	}
}
