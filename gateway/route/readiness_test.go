package route

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
)

// TestReadinessLogged: a route fed by a source logs when its table first
// has a ready node and when it has none left, once per change, not at
// every rebuild.
func TestReadinessLogged(t *testing.T) {
	cfg := &config.Config{Routes: []config.RouteConfig{{Name: "llama", Match: config.MatchConfig{Models: []string{"llama"}}}},
		Discovery: &config.DiscoveryConfig{Servers: []string{"127.0.0.1:1"}}}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st, err := NewSet(cfg, nil, Deps{Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := st.Route("llama")
	node := &discovery.Node{ID: "a", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:1001"}, Capacity: 1, State: discovery.StateReady}
	for _, l := range []discovery.OnlineList{
		{App: "llama", Version: 1, Nodes: []*discovery.Node{node}},
		{App: "llama", Version: 2, Nodes: []*discovery.Node{node}},
		{App: "llama", Version: 3},
		{App: "llama", Version: 4},
	} {
		r.Offer(l)
		r.rebuild(time.Now())
	}
	out := logs.String()
	if n := strings.Count(out, `level=INFO msg="gateway: route has ready nodes" route=llama ready=1`); n != 1 {
		t.Errorf("%d lines saying the route has ready nodes, want 1: %s", n, out)
	}
	if n := strings.Count(out, `level=WARN msg="gateway: route has no ready node left" route=llama nodes=0`); n != 1 {
		t.Errorf("%d lines saying the route has no ready node, want 1: %s", n, out)
	}
}
