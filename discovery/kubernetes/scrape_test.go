package kubernetes

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/scrape"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// Apps that name an engine carry the load the source scrapes from each
// ready endpoint (real simulated vLLM servers on loopback). A hung engine
// gets an unknown load while the other keeps fresh ones; a draining
// endpoint is no longer scraped.
func TestScrapedLoad(t *testing.T) {
	ctx := ctxT(t)
	start := func(id string) (*sim.Node, int) {
		n, err := sim.Start(ctx, sim.Config{ID: id, Model: "m", Engine: "vllm",
			PrefixCache: sim.PrefixCacheConfig{Blocks: 64}, LoRA: sim.LoRAConfig{Adapters: []string{"sql-lora"}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		_, p, _ := net.SplitHostPort(n.Addr())
		port, _ := strconv.Atoi(p)
		return n, port
	}
	_, portA := start("a")
	hung, portB := start("b")
	// Each sim listens on its own loopback port: one slice per pod, as a
	// Service whose pods serve on different target ports would have.
	e := newEnv(t,
		slice("ml", "s-a", "vllm", map[string]int{"http": portA}, epSpec{pod: "a", ip: "127.0.0.1", ready: true}),
		slice("ml", "s-b", "vllm", map[string]int{"http": portB}, epSpec{pod: "b", ip: "127.0.0.1", ready: true}),
	)
	e.start(Config{
		Apps:         []AppConfig{{App: "llama", Service: "vllm", Port: "http", Engine: "vllm"}},
		Scrape:       scrape.Config{Interval: scrape.MinInterval, Timeout: 300 * time.Millisecond},
		LoadCoalesce: 50 * time.Millisecond,
	})
	fresh := func(n *discovery.Node) bool { return n != nil && !n.Load.SampledAt.IsZero() }
	l := e.waitList("llama", "scraped loads on both nodes", func(l discovery.OnlineList) bool {
		n := nodesByID(l)
		return fresh(n["ml/a"]) && fresh(n["ml/b"])
	})
	if a := nodesByID(l)["ml/a"]; a.Engine != "vllm" || a.Load.Running != discovery.Known(0) || a.Load.KVCacheUsage != discovery.Known(0) {
		t.Errorf("idle node a: %+v", a)
	}
	// What affinity uses (issue 14): the prefix-cache counters and the
	// LoRA adapters (none running yet), known.
	if a := nodesByID(l)["ml/a"]; a.Load.PrefixCacheQueries != discovery.Known(0) || a.Load.PrefixCacheHits != discovery.Known(0) || !a.Load.LoRA.Known() || a.Load.LoRA.Len() != 0 {
		t.Errorf("idle node a: prefix-cache counters and adapters %+v", a.Load)
	}
	if got := len(e.src.scraper.Targets()); got != 2 {
		t.Errorf("%d scrape targets, want 2", got)
	}

	hung.Fail(sim.ModeHang)
	sampledA := nodesByID(l)["ml/a"].Load.SampledAt
	e.waitList("llama", "b unknown, a still fresh and newer", func(l discovery.OnlineList) bool {
		n := nodesByID(l)
		return !fresh(n["ml/b"]) && fresh(n["ml/a"]) && n["ml/a"].Load.SampledAt.After(sampledA)
	})
	if !e.logged("scrape: target failing") {
		t.Error("the hung target is not logged")
	}

	// b terminates: listed as draining, no longer scraped.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.kube.DiscoveryV1().EndpointSlices("ml").Update(ctx2,
		slice("ml", "s-b", "vllm", map[string]int{"http": portB}, epSpec{pod: "b", ip: "127.0.0.1", ready: true, terminating: true}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "b draining", func(l discovery.OnlineList) bool { return nodesByID(l)["ml/b"].State == discovery.StateDraining })
	e.waitFor("one scrape target", func() bool { return len(e.src.scraper.Targets()) == 1 })
}
