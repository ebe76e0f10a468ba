package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/probe"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// affinityTier is a Resource instance, simulated vLLM engines each behind
// a real agent (whose load comes from the engine's /metrics through the
// engines probe), all on loopback: the path engine reports take to a
// gateway in production.
type affinityTier struct {
	resource string
	sims     map[string]*sim.Node
}

// startAffinityTier starts the Resource instance and one engine and agent
// per entry of cfgs (by node id), serving the app named by its Model
// (default app).
func startAffinityTier(t *testing.T, ctx context.Context, app string, cfgs map[string]sim.Config) *affinityTier {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats every 100 ms; a load that barely moved (the prefix-cache
	// counters alone) is still propagated every 300 ms. A node turns
	// offline only after 10 s of silence: on a busy machine (-race, other
	// tests) an agent's heartbeat may come late by more than the default
	// three periods, and the node would leave the route mid-test (503).
	srv, err := resource.New(resource.Config{Token: "tok", Logger: quiet, Period: 100 * time.Millisecond, LoadRefresh: 300 * time.Millisecond,
		MissedBeats: 100})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(sctx, ln) })
	t.Cleanup(func() { stop(); wg.Wait() })
	tr := &affinityTier{resource: ln.Addr().String(), sims: map[string]*sim.Node{}}
	for id, cfg := range cfgs {
		if cfg.Model == "" {
			cfg.Model = app
		}
		cfg.ID, cfg.Engine = id, "vllm"
		n, err := sim.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		tr.sims[id] = n
		p, err := probe.New(probe.Config{Engine: "vllm", MetricsURL: n.URL() + "/metrics", NoTools: true, CPUInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(agent.Config{Servers: []string{tr.resource}, Token: "tok", NodeID: id, App: cfg.Model,
			Addresses: map[string]string{"http": n.Addr()}, Engine: "vllm", Capacity: 1,
			Load: agent.ProbeSource{Prober: p}, Period: 100 * time.Millisecond, InitialDelay: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = a.Run(sctx) })
	}
	return tr
}

// adminNode is what these tests read of /admin/nodes.
type adminNode struct {
	Route           string `json:"route"`
	ID              string `json:"id"`
	AffinityHorizon string `json:"affinity_horizon"`
	Load            *struct {
		Running            *float64 `json:"running"`
		PrefixCacheHits    *float64 `json:"prefix_cache_hits"`
		PrefixCacheQueries *float64 `json:"prefix_cache_queries"`
		LoRA               *struct {
			Running []string `json:"running"`
		} `json:"lora"`
	} `json:"load"`
}

func adminNodes(t *testing.T, gw *testGateway) map[string]adminNode {
	t.Helper()
	var v struct {
		Nodes []adminNode `json:"nodes"`
	}
	getAdmin(t, gw, "/admin/nodes", &v)
	out := map[string]adminNode{}
	for _, n := range v.Nodes {
		out[n.ID] = n
	}
	return out
}

// complete sends one completion through the gateway and returns the node
// that served it, or the error body of a non-200 answer.
func complete(ctx context.Context, c *http.Client, url, model, prompt string, tokens int) (string, int) {
	body := `{"model":"` + model + `","prompt":"` + prompt + `","max_tokens":` + itoa(tokens) + `}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return string(b), resp.StatusCode // the gateway's error, for the failure message
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get(sim.NodeHeader), resp.StatusCode
}

// TestLoRAAffinityLive (issue 14): three simulated vLLM engines serving two
// LoRA adapters (two adapter slots each) behind real agents, a Resource
// instance and the gateway. An adapter that one engine reports running
// (loaded there by traffic the gateway never saw) draws the gateway's
// requests for it to that engine while it is within the load bound; under
// a burst for the adapter the requests spread past the bound, but to at
// most max_adapter_nodes engines.
func TestLoRAAffinityLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lora := sim.LoRAConfig{Adapters: []string{"sql-lora", "chat-lora"}, MaxLoRAs: 2, LoadTime: 20 * time.Millisecond}
	perf := sim.Profile{Slots: 16, Prefill: 5 * time.Millisecond, PerToken: 20 * time.Millisecond, MaxTokens: 4}
	cfgs := map[string]sim.Config{}
	for _, id := range []string{"a", "b", "c"} {
		cfgs[id] = sim.Config{LoRA: lora, Override: perf}
	}
	tr := startAffinityTier(t, ctx, "llama", cfgs)
	rc := RouteConfig{Name: "llama", App: "llama", Match: MatchConfig{Models: []string{"llama"}, Adapters: []string{"sql-lora", "chat-lora"}}}
	rc.Affinity.MaxAdapterNodes = 2
	cfg := testConfig(rc)
	cfg.Discovery = &DiscoveryConfig{Servers: []string{tr.resource}, Token: "tok"}
	cfg.WeightPeriod = 100 * time.Millisecond
	gw := startGateway(t, cfg)
	c := testClient()
	url := gw.url("/v1/completions")

	waitFor(t, 20*time.Second, "three nodes with their engine loads", func() bool {
		ns := adminNodes(t, gw)
		for _, id := range []string{"a", "b", "c"} {
			if n, ok := ns[id]; !ok || n.Load == nil || n.Load.LoRA == nil {
				return false
			}
		}
		return true
	})
	// Traffic the gateway does not see loads sql-lora on b and keeps it
	// running there.
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go complete(bg, c, tr.sims["b"].URL()+"/v1/completions", "sql-lora", "warm", 10000)
	waitFor(t, 20*time.Second, "b to report sql-lora running", func() bool {
		n := adminNodes(t, gw)["b"]
		return n.Load != nil && n.Load.LoRA != nil && slices.Contains(n.Load.LoRA.Running, "sql-lora")
	})
	for i := range 12 {
		if node, code := complete(ctx, c, url, "sql-lora", "question "+itoa(i), 1); node != "b" || code != http.StatusOK {
			t.Fatalf("sequential request %d for sql-lora: served by %q (%d), want b, which has it loaded", i, node, code)
		}
	}
	// The base model is no adapter: its requests spread by load.
	base := map[string]int{}
	for i := range 12 {
		node, _ := complete(ctx, c, url, "llama", "unrelated prompt "+itoa(i), 1)
		base[node]++
	}
	if len(base) < 2 {
		t.Errorf("base-model requests all went to %v", base)
	}

	// A burst of concurrent long requests for sql-lora: past the load
	// bound on b it spreads, to at most max_adapter_nodes (2) nodes.
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			node, code := complete(ctx, c, url, "sql-lora", "burst "+itoa(i), 25)
			mu.Lock()
			defer mu.Unlock()
			if code != http.StatusOK {
				t.Errorf("burst request %d: %d", i, code)
			}
			served[node]++
		})
	}
	wg.Wait()
	if len(served) != 2 || served["b"] < 4 {
		t.Errorf("burst for sql-lora served by %v: want b and one more node (max_adapter_nodes 2)", served)
	}
}

// TestPrefixCalibrationLive (issue 14): the engine's prefix-cache counters
// reach the gateway's affinity through agent, Resource and discovery. A
// simulated engine whose prefix cache holds four blocks hits almost none
// of the conversation prefixes the gateway predicts it holds, so the
// calibration shortens the node's affinity horizon below max_age; an
// engine with a large cache keeps it.
func TestPrefixCalibrationLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	perf := sim.Profile{Slots: 8, Prefill: time.Millisecond, PerToken: time.Millisecond, MaxTokens: 1}
	tr := startAffinityTier(t, ctx, "", map[string]sim.Config{
		"small": {Model: "small", Override: perf, PrefixCache: sim.PrefixCacheConfig{Blocks: 4}},
		"large": {Model: "large", Override: perf, PrefixCache: sim.PrefixCacheConfig{Blocks: 1 << 16}},
	})
	small := RouteConfig{Name: "small", App: "small", Match: MatchConfig{Models: []string{"small"}}}
	large := RouteConfig{Name: "large", App: "large", Match: MatchConfig{Models: []string{"large"}}}
	small.Affinity.MaxAge, large.Affinity.MaxAge = 10*time.Minute, 10*time.Minute
	cfg := testConfig(small, large)
	cfg.Discovery = &DiscoveryConfig{Servers: []string{tr.resource}, Token: "tok"}
	cfg.WeightPeriod = 100 * time.Millisecond
	gw := startGateway(t, cfg)
	c := testClient()
	for _, id := range []string{"small", "large"} {
		waitFor(t, 20*time.Second, id+" listed with its counters", func() bool {
			n, ok := adminNodes(t, gw)[id]
			return ok && n.Load != nil && n.Load.PrefixCacheQueries != nil
		})
	}
	// Conversations whose every turn repeats the last: the gateway
	// predicts most of each prompt cached. 30 conversations of 6 turns of
	// about 2 KiB each: over 600 KiB of prompt, above the 256 KiB
	// calibration needs between two evaluations.
	turn := strings.Repeat("a sentence of the conversation that grows turn by turn, ", 36)
	for conv := range 30 {
		prompt := "conversation " + itoa(conv) + ": "
		for range 6 {
			prompt += turn
			for _, model := range []string{"small", "large"} {
				if body, code := complete(ctx, c, gw.url("/v1/completions"), model, prompt, 1); code != http.StatusOK {
					t.Fatalf("%s: %d %s", model, code, body)
				}
			}
		}
	}
	waitFor(t, 20*time.Second, "the small cache's horizon to shrink", func() bool {
		h, err := time.ParseDuration(adminNodes(t, gw)["small"].AffinityHorizon)
		return err == nil && h < 10*time.Minute
	})
	n := adminNodes(t, gw)["small"]
	hits, queries := *n.Load.PrefixCacheHits, *n.Load.PrefixCacheQueries
	if !(queries > 0 && hits < queries/4) {
		t.Errorf("small cache: %v hits of %v queries reached the gateway", hits, queries)
	}
	l := adminNodes(t, gw)["large"]
	if l.AffinityHorizon != "10m0s" {
		t.Errorf("large cache: horizon %s, want max_age (10m0s)", l.AffinityHorizon)
	}
	t.Logf("small: %v hits of %v queries, horizon %s; large: %v of %v, horizon %s", hits, queries, n.AffinityHorizon,
		*l.Load.PrefixCacheHits, *l.Load.PrefixCacheQueries, l.AffinityHorizon)
	if h, q := *l.Load.PrefixCacheHits, *l.Load.PrefixCacheQueries; !(h > q/2) {
		t.Errorf("large cache: %v hits of %v queries", h, q)
	}
}
