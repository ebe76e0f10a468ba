package gateway

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

// TestShadowAndSplitCountersSurviveReload: a reload builds a new Mirror
// and a new Splitter for its routes, yet on /metrics no
// switchyard_shadow_* or switchyard_split_* counter goes down, and the
// counters (and GET /admin/splits, /admin/shadows) equal the totals over
// all of them: after a reload with the same configuration and after one
// that changes the shadow's compare fields and the split's weights.
func TestShadowAndSplitCountersSurviveReload(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	conf := func(fields []string, weightA float64) *Config {
		shc := shadow.DefaultConfig()
		shc.Target = "model-b"
		shc.Compare.Fields = fields
		sc := split.DefaultConfig()
		sc.Variants = split.Variants{{Name: "va", Weight: weightA, Target: "model-a"}, {Name: "vb", Weight: 100 - weightA, Target: "model-b"}}
		return testConfig(
			RouteConfig{Name: "mirrored", Match: MatchConfig{Models: []string{"mirrored"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Shadow: &shc},
			RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Split: &sc},
			staticRoute("model-a", a.URL),
			staticRoute("model-b", b.URL),
		)
	}
	gw := startGateway(t, conf(nil, 50))
	c := testClient()

	var mirrored, va, vb int64 // requests sent so far
	traffic := func(nMirror, nA, nB int) {
		t.Helper()
		for range nMirror {
			if resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"mirrored"}`); resp.StatusCode != 200 {
				t.Fatalf("mirrored: %d %s", resp.StatusCode, body)
			}
		}
		for i := range nA + nB {
			v := "va"
			if i >= nA {
				v = "vb"
			}
			resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"chat"}`, split.DefaultOverrideHeader, v)
			if resp.StatusCode != 200 || resp.Header.Get("X-Switchyard-Variant") != v {
				t.Fatalf("chat as %s: %d variant %q %s", v, resp.StatusCode, resp.Header.Get("X-Switchyard-Variant"), body)
			}
		}
		mirrored, va, vb = mirrored+int64(nMirror), va+int64(nA), vb+int64(nB)
		// The copies are sent after the primary answered, and compared
		// after their answer (Mirrored counts the answer; the counters of
		// the comparison follow): wait until every copy is released,
		// compared and counted, before a scrape or a reload.
		m := gw.g.core.Routes().Route("mirrored").Mirror()
		waitFor(t, 10*time.Second, "shadow copies answered and compared", func() bool {
			st := m.Stats()
			return st.Mirrored == mirrored && st.Live == 0
		})
	}

	last := map[string]float64{}
	check := func(step string, wantFields map[string]float64) {
		t.Helper()
		fams := scrapeMetrics(t, gw)
		got := counterSeries(fams, "switchyard_shadow_", "switchyard_split_")
		for k, v := range last {
			if g, ok := got[k]; !ok || g < v {
				t.Errorf("%s: %s went from %v to %v (present %v)", step, k, v, g, ok)
			}
		}
		last = got
		want := map[string]float64{
			"switchyard_shadow_offered_total{route=mirrored}":                          float64(mirrored),
			"switchyard_shadow_mirrored_total{route=mirrored}":                         float64(mirrored),
			"switchyard_shadow_compared_total{route=mirrored}":                         float64(mirrored),
			"switchyard_shadow_dropped_total{reason=closed,route=mirrored}":            0,
			"switchyard_shadow_errors_total{reason=canceled,route=mirrored}":           0,
			"switchyard_split_requests_total{route=chat,variant=va}":                   float64(va),
			"switchyard_split_requests_total{route=chat,variant=vb}":                   float64(vb),
			"switchyard_shadow_field_mismatch_total{field=node,route=mirrored}":        wantFields["node"],
			"switchyard_shadow_field_mismatch_total{field=model,route=mirrored}":       wantFields["model"],
			"switchyard_shadow_differences_total{route=mirrored}":                      wantFields["node"],
			"switchyard_shadow_status_mismatch_total{route=mirrored}":                  0,
			"switchyard_split_override_rejected_total{route=chat}":                     0,
			"switchyard_split_errors_total{route=chat,variant=va}":                     0,
			"switchyard_split_tokens_total{route=chat,variant=va}":                     0,
			"switchyard_shadow_log_dropped_total{route=mirrored}":                      0,
			"switchyard_shadow_errors_total{reason=timeout,route=mirrored}":            0,
			"switchyard_shadow_dropped_total{reason=queue_full,route=mirrored}":        0,
			"switchyard_shadow_dropped_total{reason=body_too_large,route=mirrored}":    0,
			"switchyard_shadow_errors_total{reason=response_too_large,route=mirrored}": 0,
		}
		for k, v := range want {
			g, ok := got[k]
			if v == 0 && !ok {
				continue // a series not created yet (no field, no error)
			}
			if g != v {
				t.Errorf("%s: %s = %v (present %v), want %v", step, k, g, ok, v)
			}
		}

		var splits struct {
			Splits []splitJSONForTest `json:"splits"`
		}
		getAdmin(t, gw, "/admin/splits", &splits)
		if len(splits.Splits) != 1 || len(splits.Splits[0].Variants) != 2 ||
			splits.Splits[0].Variants[0].Requests != va || splits.Splits[0].Variants[1].Requests != vb {
			t.Errorf("%s: /admin/splits %+v, want va %d vb %d", step, splits.Splits, va, vb)
		}
		var shadows struct {
			Shadows []struct {
				Offered  int64 `json:"offered"`
				Mirrored int64 `json:"mirrored"`
			} `json:"shadows"`
		}
		getAdmin(t, gw, "/admin/shadows", &shadows)
		if len(shadows.Shadows) != 1 || shadows.Shadows[0].Offered != mirrored || shadows.Shadows[0].Mirrored != mirrored {
			t.Errorf("%s: /admin/shadows %+v, want offered and mirrored %d", step, shadows.Shadows, mirrored)
		}
		if t.Failed() {
			t.Fatalf("%s: scrape %v", step, got)
		}
	}

	traffic(5, 2, 2)
	check("first config", nil)

	m0, s0 := gw.g.core.Routes().Route("mirrored").Mirror(), gw.g.core.Routes().Route("chat").Splitter()
	if err := gw.g.Reload(conf(nil, 50)); err != nil {
		t.Fatal(err)
	}
	m1, s1 := gw.g.core.Routes().Route("mirrored").Mirror(), gw.g.core.Routes().Route("chat").Splitter()
	if m1 == m0 || s1 == s0 {
		t.Fatal("the reload kept the Mirror or the Splitter: nothing tested")
	}
	check("same config reloaded", nil)
	traffic(4, 1, 3)
	check("traffic after the reload", nil)

	if err := gw.g.Reload(conf([]string{"node", "model"}, 30)); err != nil {
		t.Fatal(err)
	}
	if gw.g.core.Routes().Route("mirrored").Mirror() == m1 {
		t.Fatal("the second reload kept the Mirror")
	}
	check("changed config reloaded", nil)
	traffic(3, 2, 1)
	// a answers {"node":"a",...}, b {"node":"b",...}: node differs on
	// every copy since the fields were configured, model is absent from
	// both.
	check("traffic after the change", map[string]float64{"node": 3, "model": 0})
}

// splitJSONForTest is the part of GET /admin/splits the reload test reads.
type splitJSONForTest struct {
	Route    string `json:"route"`
	Variants []struct {
		Name     string `json:"name"`
		Requests int64  `json:"requests"`
	} `json:"variants"`
}

// counterSeries is every counter series of the scrape whose name starts
// with one of prefixes, by "name{label=value,...}" (labels sorted).
func counterSeries(fams map[string]*dto.MetricFamily, prefixes ...string) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		keep := false
		for _, p := range prefixes {
			keep = keep || strings.HasPrefix(name, p)
		}
		if !keep || f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			// Labels come sorted by name in the exposition.
			out[name+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out
}
