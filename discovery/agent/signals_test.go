package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/probe"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// tier is one Resource instance and one watching client on loopback.
type tier struct {
	servers []string
	mu      sync.Mutex
	last    discovery.OnlineList
	changed chan struct{} // closed and replaced on every update
}

func startTier(t *testing.T, ctx context.Context, app string) *tier {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "k", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tr := &tier{servers: []string{ln.Addr().String()}, changed: make(chan struct{})}
	c, err := discovery.NewClient(discovery.ClientConfig{Servers: tr.servers, Token: "k", Apps: []string{app}, Logger: quiet,
		OnUpdate: func(_ string, l discovery.OnlineList) {
			tr.mu.Lock()
			tr.last = l
			close(tr.changed)
			tr.changed = make(chan struct{})
			tr.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(sctx, ln) })
	wg.Go(func() { _ = c.Run(sctx) })
	t.Cleanup(func() { stop(); wg.Wait() })
	return tr
}

// waitNode waits until the client's view of node id satisfies cond.
func (tr *tier) waitNode(ctx context.Context, t *testing.T, id, what string, cond func(n *discovery.Node) bool) *discovery.Node {
	t.Helper()
	for {
		tr.mu.Lock()
		l, ch := tr.last, tr.changed
		tr.mu.Unlock()
		for _, n := range l.Nodes {
			if n.ID == id && cond(n) {
				return n
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			for _, n := range l.Nodes {
				if n.ID == id {
					t.Fatalf("%s: node %s never did (last load %+v)", what, id, n.Load)
				}
			}
			t.Fatalf("%s: node %s never listed", what, id)
		}
	}
}

// probeAgent runs an agent whose load and readiness come from the engines
// probes of a simulated engine.
func probeAgent(t *testing.T, ctx context.Context, servers []string, app, id, engine string, n *sim.Node) {
	t.Helper()
	p, err := probe.New(probe.Config{Engine: engine, MetricsURL: n.URL() + "/metrics", NoTools: true, CPUInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ready, err := agent.EngineReadiness(engine, n.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Servers: servers, Token: "k", NodeID: id, App: app,
		Addresses: map[string]string{"http": n.Addr()}, Engine: engine, Capacity: 1,
		Load: agent.ProbeSource{Prober: p, Ready: ready}, Period: 200 * time.Millisecond, InitialDelay: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = a.Run(actx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}

func startSim(t *testing.T, ctx context.Context, cfg sim.Config) *sim.Node {
	t.Helper()
	n, err := sim.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestEngineSignalsReachSubscribers: running, waiting, KV-cache usage and
// the engine's readiness travel from real (simulated) engines through the
// agent and Resource to a discovery.Client, unknown staying unknown
// (issue 13): vLLM reports all three quantities, Triton only its queue;
// a vLLM engine that stops answering its health probe turns not_ready and
// back, one put to sleep (POST /sleep) turns asleep and back on
// /wake_up; MindIE's 503 on its ready probe while every slot is taken reads as
// busy.
func TestEngineSignalsReachSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := startTier(t, ctx, "m")
	slow := sim.Profile{Slots: 1, Prefill: 20 * time.Second, PerToken: time.Millisecond, MaxTokens: 4}
	vllm := startSim(t, ctx, sim.Config{Model: "m", Engine: "vllm"})
	triton := startSim(t, ctx, sim.Config{Model: "m", Engine: "triton"})
	mindie := startSim(t, ctx, sim.Config{Model: "m", Engine: "mindie", Override: slow})
	probeAgent(t, ctx, tr.servers, "m", "v", "vllm", vllm)
	probeAgent(t, ctx, tr.servers, "m", "t", "triton", triton)
	probeAgent(t, ctx, tr.servers, "m", "mi", "mindie", mindie)

	v := tr.waitNode(ctx, t, "v", "vLLM ready with its load", func(n *discovery.Node) bool {
		return n.Load.Readiness == discovery.ReadinessReady && n.Load.Running.IsKnown()
	})
	if v.Load.Running != discovery.Known(0) || v.Load.Waiting != discovery.Known(0) || v.Load.KVCacheUsage != discovery.Known(0) {
		t.Fatalf("idle vLLM: want known zeros, got %+v", v.Load)
	}
	tn := tr.waitNode(ctx, t, "t", "Triton ready", func(n *discovery.Node) bool {
		return n.Load.Readiness == discovery.ReadinessReady && n.Load.Waiting.IsKnown()
	})
	if tn.Load.Running.IsKnown() || tn.Load.KVCacheUsage.IsKnown() {
		t.Fatalf("Triton reports no running count or KV cache; they must arrive unknown, got %+v", tn.Load)
	}

	vllm.Drain() // /health answers 503
	tr.waitNode(ctx, t, "v", "vLLM not ready", func(n *discovery.Node) bool { return n.Load.Readiness == discovery.ReadinessNotReady })
	vllm.Undrain()
	tr.waitNode(ctx, t, "v", "vLLM ready again", func(n *discovery.Node) bool { return n.Load.Readiness == discovery.ReadinessReady })

	// vLLM's sleep mode: /health stays 200, vllm:engine_sleep_state says
	// it sleeps.
	sleepReq := func(path string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, vllm.URL()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	sleepReq("/sleep?level=1")
	v = tr.waitNode(ctx, t, "v", "vLLM asleep", func(n *discovery.Node) bool { return n.Load.Readiness == discovery.ReadinessAsleep })
	if v.Load.Running != discovery.Known(0) || !v.Eligible() {
		t.Fatalf("asleep vLLM: want running 0 and still listed, got %+v", v.Load)
	}
	sleepReq("/wake_up")
	tr.waitNode(ctx, t, "v", "vLLM awake and ready", func(n *discovery.Node) bool { return n.Load.Readiness == discovery.ReadinessReady })

	tr.waitNode(ctx, t, "mi", "MindIE ready", func(n *discovery.Node) bool { return n.Load.Readiness == discovery.ReadinessReady })
	// Take MindIE's only slot with a long request: its ready probe answers
	// 503 while alive.
	rctx, stopReq := context.WithCancel(ctx)
	defer stopReq()
	go func() {
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, mindie.URL()+"/v1/completions", strings.NewReader(`{"model":"m","prompt":"x","max_tokens":2}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// The ready probe and the metrics scrape run side by side, so one
	// sample may see the slot taken by one and not yet by the other; the
	// next sample agrees. Wait for both, then check the rest.
	mi := tr.waitNode(ctx, t, "mi", "MindIE busy with its one request running", func(n *discovery.Node) bool {
		return n.Load.Readiness == discovery.ReadinessBusy && n.Load.Running == discovery.Known(1)
	})
	if !mi.Eligible() {
		t.Fatal("a busy engine stays listed as a target; gateways read its readiness")
	}
}

// TestAffinitySignalsReachSubscribers (issue 14): an engine's prefix-cache
// counters and its LoRA adapters travel from a simulated vLLM through the
// agent and Resource to a discovery.Client; SGLang's hit rate too.
func TestAffinitySignalsReachSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := startTier(t, ctx, "m")
	slow := sim.Profile{Slots: 4, Prefill: 10 * time.Millisecond, PerToken: time.Second, MaxTokens: 30}
	vllm := startSim(t, ctx, sim.Config{Model: "m", Engine: "vllm", Override: slow,
		PrefixCache: sim.PrefixCacheConfig{Blocks: 256}, LoRA: sim.LoRAConfig{Adapters: []string{"sql-lora", "chat-lora"}, MaxLoRAs: 1}})
	sglang := startSim(t, ctx, sim.Config{Model: "m", Engine: "sglang", PrefixCache: sim.PrefixCacheConfig{Blocks: 256}})
	probeAgent(t, ctx, tr.servers, "m", "v", "vllm", vllm)
	probeAgent(t, ctx, tr.servers, "m", "s", "sglang", sglang)

	v := tr.waitNode(ctx, t, "v", "vLLM's counters and adapters known", func(n *discovery.Node) bool {
		return n.Load.PrefixCacheQueries.IsKnown() && n.Load.LoRA.Known()
	})
	if v.Load.PrefixCacheHits != discovery.Known(0) || v.Load.LoRA.Len() != 0 || v.Load.PrefixCacheHitRate.IsKnown() {
		t.Fatalf("idle vLLM: want zero counters, no adapters and no hit rate, got %+v", v.Load)
	}
	prompt := strings.Repeat("the same long system prompt for every request ", 40)
	send := func(ctx context.Context, url, model string, tokens int) {
		body := `{"model":"` + model + `","prompt":"` + prompt + `","max_tokens":` + itoa(tokens) + `}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// Two equal prompts: the second hits the first's blocks.
	for range 2 {
		send(ctx, vllm.URL(), "m", 1)
		send(ctx, sglang.URL(), "m", 1)
	}
	// A long request for an adapter keeps it running; a second adapter
	// waits for the only slot.
	rctx, stopReq := context.WithCancel(ctx)
	defer stopReq()
	go send(rctx, vllm.URL(), "sql-lora", 30)
	tr.waitNode(ctx, t, "v", "sql-lora running", func(n *discovery.Node) bool {
		return slices.Equal(n.Load.LoRA.Running(), []string{"sql-lora"})
	})
	go send(rctx, vllm.URL(), "chat-lora", 30)
	tr.waitNode(ctx, t, "v", "chat-lora waiting", func(n *discovery.Node) bool {
		return slices.Equal(n.Load.LoRA.Waiting(), []string{"chat-lora"})
	})
	v = tr.waitNode(ctx, t, "v", "the prefix hits counted", func(n *discovery.Node) bool {
		h, _ := n.Load.PrefixCacheHits.Get()
		return h > 0
	})
	h, _ := v.Load.PrefixCacheHits.Get()
	q, _ := v.Load.PrefixCacheQueries.Get()
	if !(q > h) {
		t.Errorf("vLLM: hits %v of %v queries", h, q)
	}
	s := tr.waitNode(ctx, t, "s", "SGLang's hit rate", func(n *discovery.Node) bool {
		r, _ := n.Load.PrefixCacheHitRate.Get()
		return r > 0
	})
	if r, _ := s.Load.PrefixCacheHitRate.Get(); r >= 1 || s.Load.PrefixCacheQueries.IsKnown() || s.Load.LoRA.Known() {
		t.Errorf("SGLang: %+v, want a hit rate in (0, 1) and no counters or adapters", s.Load)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
