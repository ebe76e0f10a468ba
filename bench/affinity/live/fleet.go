package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines"
	_ "github.com/switchyard-dev/switchyard/engines/all" // the vllm adapter
	"github.com/switchyard-dev/switchyard/engines/probe"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// Model is the model the live fleet serves, and the route's name.
const Model = "chat"

// token is the Resource token of a run (loopback only).
const token = "live-bench"

// fleet is one run's Resource instance, engines and agents.
type fleet struct {
	resource string
	nodes    []*sim.Node
	cards    []string // card of each node
	stop     func()
}

// startFleet starts a Resource instance and, per engine, a simulated vLLM
// and a node agent that reads its metrics, all on loopback. stop ends
// them all.
func startFleet(ctx context.Context, cards []Card) (*fleet, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	f := &fleet{}
	f.stop = func() {
		cancel()
		wg.Wait()
		for _, n := range f.nodes {
			_ = n.Close()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.stop()
		return nil, fmt.Errorf("live: %w", err)
	}
	srv, err := resource.New(resource.Config{Token: token, Logger: quiet})
	if err != nil {
		_ = ln.Close()
		f.stop()
		return nil, fmt.Errorf("live: resource: %w", err)
	}
	f.resource = ln.Addr().String()
	wg.Go(func() { _ = srv.Serve(ctx, ln) })
	for _, k := range cards {
		prof, err := sim.LookupProfile(k.Name, nil)
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("live: card %q: %w", k.Name, err)
		}
		for i := range k.Count {
			id := fmt.Sprintf("%s-%d", k.Name, i+1)
			n, err := sim.Start(ctx, sim.Config{
				ID: id, Model: Model, Engine: "vllm", Profile: k.Name,
				Override: sim.Profile{Slots: k.Slots, QueueDepth: 1024, Prefill: k.Prefill,
					PrefillPerToken: k.PrefillPerToken, PerToken: k.PerToken},
				PrefixCache: sim.PrefixCacheConfig{Blocks: k.CacheBlocks},
			})
			if err != nil {
				f.stop()
				return nil, fmt.Errorf("live: engine %s: %w", id, err)
			}
			f.nodes = append(f.nodes, n)
			f.cards = append(f.cards, k.Name)
			p, err := probe.New(probe.Config{Engine: "vllm", MetricsURL: n.URL() + "/metrics", NoTools: true})
			if err != nil {
				f.stop()
				return nil, fmt.Errorf("live: probe %s: %w", id, err)
			}
			ready, err := agent.EngineReadiness("vllm", n.URL(), nil)
			if err != nil {
				f.stop()
				return nil, fmt.Errorf("live: readiness %s: %w", id, err)
			}
			a, err := agent.New(agent.Config{Servers: []string{f.resource}, Token: token, NodeID: id, App: Model,
				Addresses: map[string]string{"http": n.Addr()}, Engine: "vllm", Capacity: prof.Capacity(),
				Load: agent.ProbeSource{Prober: p, Ready: ready, UtilFromKVCache: true}, Logger: quiet})
			if err != nil {
				f.stop()
				return nil, fmt.Errorf("live: agent %s: %w", id, err)
			}
			wg.Go(func() { _ = a.Run(ctx) })
		}
	}
	return f, nil
}

// prefixCounts sums the engines' prefix-cache hits and queries (tokens),
// read from their /metrics as any scraper reads vLLM's.
func (f *fleet) prefixCounts(ctx context.Context, c *http.Client) (hits, queries float64, err error) {
	a, err := engines.Lookup("vllm")
	if err != nil {
		return 0, 0, err
	}
	for _, n := range f.nodes {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := engines.Scrape(sctx, c, n.URL()+"/metrics", a)
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("live: metrics of %s: %w", n.ID(), err)
		}
		h, ok1 := l.PrefixCacheHits.Get()
		q, ok2 := l.PrefixCacheQueries.Get()
		if !ok1 || !ok2 {
			return 0, 0, errors.New("live: an engine reports no prefix-cache counters")
		}
		hits += h
		queries += q
	}
	return hits, queries, nil
}
