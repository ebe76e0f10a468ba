package route

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
)

func testSet(t *testing.T, routes ...config.RouteConfig) *Set {
	t.Helper()
	cfg := &config.Config{Routes: routes, Discovery: &config.DiscoveryConfig{Servers: []string{"127.0.0.1:1"}}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewSet(cfg, nil, Deps{Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type noHeaders struct{}

func (noHeaders) Header([]byte) []byte { return nil }

// TestAdapterRoutes: match.adapters names match like models (exact names
// in the model index, "prefix*" entries by prefix) and are listed by GET
// /v1/models; AdapterKey tells an adapter from a base model.
func TestAdapterRoutes(t *testing.T) {
	st := testSet(t,
		config.RouteConfig{Name: "llama", Match: config.MatchConfig{Models: []string{"llama"}, Adapters: []string{"sql-lora", "tenant-*"}}},
		config.RouteConfig{Name: "v2", Match: config.MatchConfig{PathPrefix: "/v2/", Adapters: []string{"kserve-lora"}}},
		config.RouteConfig{Name: "off", Match: config.MatchConfig{Models: []string{"qwen"}, Adapters: []string{"qwen-lora"}}, Affinity: config.AffinityConfig{Off: true}},
	)
	for _, tc := range []struct {
		model, path, route string
		adapter            bool
	}{
		{"llama", "/v1/chat/completions", "llama", false},
		{"sql-lora", "/v1/chat/completions", "llama", true},
		{"tenant-42", "/v1/completions", "llama", true},
		{"tenant-", "/v1/completions", "", false}, // a prefix entry needs a name after it
		{"kserve-lora", "/v2/models/kserve-lora/infer", "v2", true},
		{"kserve-lora", "/v1/completions", "", false},
		{"qwen-lora", "/v1/completions", "off", false}, // affinity off: no adapter key
	} {
		r, err := st.Match(nil, []byte(tc.path), noHeaders{}, []byte(tc.model), true)
		switch {
		case tc.route == "" && err == nil:
			t.Errorf("%s %s: matched route %s", tc.model, tc.path, r.Name())
		case tc.route != "" && (err != nil || r.Name() != tc.route):
			t.Errorf("%s %s: %v %v, want route %s", tc.model, tc.path, r, err, tc.route)
		case r != nil:
			want := uint64(0)
			if tc.adapter {
				want = balancer.AffinityKey([]byte(tc.model))
			}
			if got := r.AdapterKey([]byte(tc.model)); got != want {
				t.Errorf("%s: adapter key %x, want %x", tc.model, got, want)
			}
		}
	}
	if got, want := st.Models(), []string{"kserve-lora", "llama", "qwen", "qwen-lora", "sql-lora"}; !slices.Equal(got, want) {
		t.Errorf("models %v, want %v", got, want)
	}
}

// TestReportsReachAffinity: the route passes each node's engine report
// (LoRA adapters, prefix-cache counters) to its affinity at every rebuild:
// an adapter some node reports loaded becomes an adapter of the route,
// and its requests go to that node while it is within the load bound.
func TestReportsReachAffinity(t *testing.T) {
	st := testSet(t, config.RouteConfig{Name: "llama", Match: config.MatchConfig{Models: []string{"llama"}}})
	r := st.Route("llama")
	lora, err := discovery.NewAdapters([]string{"dyn-lora"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := func(id, addr string, l discovery.Load) *discovery.Node {
		return &discovery.Node{ID: id, App: "llama", Addresses: map[string]string{"http": addr}, Capacity: 1, State: discovery.StateReady, Load: l}
	}
	r.Offer(discovery.OnlineList{App: "llama", Version: 1, Nodes: []*discovery.Node{
		node("a", "127.0.0.1:1001", discovery.Load{}),
		node("b", "127.0.0.1:1002", discovery.Load{LoRA: lora, PrefixCacheHits: discovery.Known(10), PrefixCacheQueries: discovery.Known(40)}),
		node("c", "127.0.0.1:1003", discovery.Load{}),
	}})
	r.rebuild(time.Now())
	key := r.AdapterKey([]byte("dyn-lora"))
	if key != balancer.AffinityKey([]byte("dyn-lora")) {
		t.Fatalf("a reported adapter: key %x", key)
	}
	if r.AdapterKey([]byte("llama")) != 0 {
		t.Fatal("the base model is no adapter")
	}
	tbl := r.Table()
	for i := range 20 {
		ch, err := r.Affinity().Pick(tbl, &balancer.AffinityRequest{Adapter: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Endpoint.ID() != "b" || ch.Reason != balancer.ByAdapter {
			t.Fatalf("pick %d: %s by %s, want b by adapter", i, ch.Endpoint.ID(), ch.Reason)
		}
	}
	// The node stops reporting it: no longer an adapter of the route
	// (unless listed in match.adapters).
	r.Offer(discovery.OnlineList{App: "llama", Version: 2, Nodes: []*discovery.Node{
		node("a", "127.0.0.1:1001", discovery.Load{}), node("b", "127.0.0.1:1002", discovery.Load{}), node("c", "127.0.0.1:1003", discovery.Load{}),
	}})
	r.rebuild(time.Now())
	if r.AdapterKey([]byte("dyn-lora")) != 0 {
		t.Fatal("an adapter no node reports any more")
	}
}

// TestNodeReport: a load's affinity signals become a balancer report;
// unknown counters leave PrefixCounts false (known zeros set it) and an
// unknown rate reads as negative.
func TestNodeReport(t *testing.T) {
	lora, _ := discovery.NewAdapters([]string{"a", "b"}, []string{"b", "c"})
	for _, tc := range []struct {
		name string
		load discovery.Load
		want balancer.NodeReport
		ok   bool
	}{
		{"nothing", discovery.Load{Running: discovery.Known(3)}, balancer.NodeReport{HitRate: -1}, false},
		{"counters", discovery.Load{PrefixCacheHits: discovery.Known(5), PrefixCacheQueries: discovery.Known(9)}, balancer.NodeReport{PrefixHits: 5, PrefixQueries: 9, PrefixCounts: true, HitRate: -1}, true},
		{"counters at zero", discovery.Load{PrefixCacheHits: discovery.Known(0), PrefixCacheQueries: discovery.Known(0)}, balancer.NodeReport{PrefixCounts: true, HitRate: -1}, true},
		{"half the counters", discovery.Load{PrefixCacheHits: discovery.Known(5)}, balancer.NodeReport{HitRate: -1}, false},
		{"rate", discovery.Load{PrefixCacheHitRate: discovery.Known(0.4)}, balancer.NodeReport{HitRate: 0.4}, true},
		{"adapters", discovery.Load{LoRA: lora}, balancer.NodeReport{Adapters: []string{"a", "b", "c"}, HitRate: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := nodeReport(&tc.load)
			if ok != tc.ok || got.PrefixHits != tc.want.PrefixHits || got.PrefixQueries != tc.want.PrefixQueries || got.PrefixCounts != tc.want.PrefixCounts || got.HitRate != tc.want.HitRate ||
				len(got.Adapters) != len(tc.want.Adapters) {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
			for i := range got.Adapters {
				if got.Adapters[i] != tc.want.Adapters[i] {
					t.Fatalf("adapters %v, want %v", got.Adapters, tc.want.Adapters)
				}
			}
		})
	}
}
