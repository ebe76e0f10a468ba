package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/probe"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// TestSleepingEngineLeavesRotation (issue 13), end to end with real
// parts: two simulated vLLM engines, each with an agent reading its
// metrics and health, a Resource instance and a gateway routing by
// discovery. One engine is put to sleep with vLLM's POST /sleep: its
// health stays 200, only vllm:engine_sleep_state says it sleeps. The
// agent reports it asleep, the gateway marks the node asleep and sends
// every request to the other engine; after POST /wake_up it serves again.
func TestSleepingEngineLeavesRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "tok", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Serve(rctx, ln) }()
	defer func() { rcancel(); <-rdone }()
	resAddr := ln.Addr().String()

	engine := map[string]*sim.Node{}
	for _, id := range []string{"a", "b"} {
		n, err := sim.Start(ctx, sim.Config{ID: id, Model: "llama", Engine: "vllm",
			Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Millisecond, MaxTokens: 2}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		engine[id] = n
		p, err := probe.New(probe.Config{Engine: "vllm", MetricsURL: n.URL() + "/metrics", NoTools: true, CPUInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ready, err := agent.EngineReadiness("vllm", n.URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(agent.Config{Servers: []string{resAddr}, Token: "tok", NodeID: id, App: "llama",
			Addresses: map[string]string{"http": n.Addr()}, Engine: "vllm", Capacity: 1,
			Load: agent.ProbeSource{Prober: p, Ready: ready}, Period: 200 * time.Millisecond, InitialDelay: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}

	cfg := testConfig(RouteConfig{Name: "llama", Match: MatchConfig{Models: []string{"llama"}}})
	cfg.Discovery = &DiscoveryConfig{Servers: []string{resAddr}, Token: "tok"}
	cfg.WeightPeriod = 200 * time.Millisecond
	gw := startGateway(t, cfg)
	c := testClient()
	served := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"llama","prompt":"x","max_tokens":1}`)
			seen[resp.Header.Get(sim.NodeHeader)+"/"+http.StatusText(resp.StatusCode)]++
		}
		return seen
	}
	state := func(id string) string {
		var v struct {
			Nodes []struct{ ID, State string } `json:"nodes"`
		}
		getAdmin(t, gw, "/admin/nodes", &v)
		for _, n := range v.Nodes {
			if n.ID == id {
				return n.State
			}
		}
		return ""
	}
	sleepAPI := func(id, path string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, engine[id].URL()+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s on %s: %d", path, id, resp.StatusCode)
		}
	}

	waitFor(t, 20*time.Second, "both engines to serve", func() bool {
		s := served(10)
		return s["a/OK"] > 0 && s["b/OK"] > 0
	})
	sleepAPI("a", "/sleep?level=1")
	waitFor(t, 20*time.Second, "the gateway to mark the sleeping engine asleep", func() bool { return state("a") == "asleep" })
	if s := served(20); s["b/OK"] != 20 {
		t.Errorf("with engine a asleep: %v, want all 20 served by b", s)
	}
	if st := engine["a"].Stats(); st.SleepLevel != 1 {
		t.Errorf("engine a: %+v, want sleep level 1", st)
	}
	sleepAPI("a", "/wake_up")
	waitFor(t, 20*time.Second, "the woken engine to serve again", func() bool {
		return state("a") == "ready" && served(10)["a/OK"] > 0
	})
}
