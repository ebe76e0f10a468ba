package policysim

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// Weigher variants for TestExperiment, named by their WeightConfig
// (lN = Learn, tN = Trust, aN = AdaptStep; unset fields take the
// defaults). They are how bench/results/policies-analysis.md explored the
// weighting.
func init() {
	add := func(name string, wc balancer.WeightConfig) {
		extra[name] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.HeadroomWeigher{Config: wc}, Choices: 1}
	}
	add("learn-only", balancer.WeightConfig{AdaptStep: -1})
	add("adapt-only", balancer.WeightConfig{Learn: -1})
	for _, l := range []float64{0.1, 0.25, 0.5, 1} {
		for _, tr := range []float64{1.5, 2, 3, 4} {
			for _, a := range []float64{-1, 2, 4, 8} {
				name := "l" + strconv.FormatFloat(l, 'g', -1, 64) + "-t" + strconv.FormatFloat(tr, 'g', -1, 64) + "-a" + strconv.FormatFloat(a, 'g', -1, 64)
				add(name, balancer.WeightConfig{Learn: l, Trust: tr, AdaptStep: a})
			}
		}
	}
	for _, b := range []float64{1, 1.05, 1.1, 1.25, 1.5} {
		extra["bound-"+strconv.FormatFloat(b, 'g', -1, 64)] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.HeadroomWeigher{}, Choices: 1, LoadBound: b}
	}
	for _, pb := range []int{10, 20, 40} {
		extra["throughput-pb"+strconv.Itoa(pb)] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.ThroughputWeigher{PriorBusy: time.Duration(pb) * time.Second}}
	}
	// Oracles: capacity is the node's true current throughput.
	extra["oracle-c2"] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.StaticWeigher{}, Choices: 2}
	trueCapacity["oracle-c2"] = true
	// Two choices over HeadroomWeigher's weights, and priors.
	extra["headroom-c2"] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.HeadroomWeigher{}, Choices: 2}
	for _, pr := range []float64{1, 16} {
		extra["throughput-prior"+strconv.FormatFloat(pr, 'g', -1, 64)] = balancer.Config{Policy: balancer.SWRR, Weigher: balancer.ThroughputWeigher{Prior: pr}}
	}
	// Queue ageing (issue 13): half-lives of the reported queue, and the
	// default with reported queues ignored by the balancer (same picks as
	// queue-blind, whose nodes hide them).
	for _, hl := range []float64{0.5, 1, 4, 8, 60} {
		extra["queue-hl"+strconv.FormatFloat(hl, 'g', -1, 64)] = balancer.Config{QueueHalfLife: time.Duration(hl * float64(time.Second))}
	}
	extra["queue-off"] = balancer.Config{QueueHalfLife: -1}
	add("step-4", balancer.WeightConfig{Learn: -1, AdaptStep: -1, MaxStep: 4})
	add("step-8", balancer.WeightConfig{Learn: -1, AdaptStep: -1, MaxStep: 8})
}

// TestExperiment runs policies (EXP_POLICIES, comma-separated: names of
// Policies, Extras or the variants above) at loads (EXP_LOADS) on
// EXP_NODES nodes (default 2000; 4 simulated minutes below 10,000, else
// DefaultConfig's 6) behind EXP_GATEWAYS gateways (default 1) for
// EXP_SEEDS seeds, and logs one line per run. It is skipped unless
// EXP_POLICIES is set.
func TestExperiment(t *testing.T) {
	names := os.Getenv("EXP_POLICIES")
	if names == "" {
		t.Skip("EXP_POLICIES not set")
	}
	nodes, _ := strconv.Atoi(os.Getenv("EXP_NODES"))
	if nodes == 0 {
		nodes = 2000
	}
	gateways, _ := strconv.Atoi(os.Getenv("EXP_GATEWAYS"))
	seeds, _ := strconv.Atoi(os.Getenv("EXP_SEEDS"))
	seeds = max(seeds, 1)
	var loads []float64
	for _, s := range strings.Split(os.Getenv("EXP_LOADS"), ",") {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("EXP_LOADS: %v", err)
		}
		loads = append(loads, v)
	}
	type job struct {
		p    string
		l    float64
		seed uint64
	}
	var jobs []job
	for _, l := range loads {
		for _, p := range strings.Split(names, ",") {
			for sd := 1; sd <= seeds; sd++ {
				jobs = append(jobs, job{p, l, uint64(sd)})
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan job)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				c := DefaultConfig()
				c.Nodes = nodes
				if nodes < 10000 {
					c.Duration = 4 * time.Minute
				}
				c.Policy, c.Load, c.Seed, c.Gateways = j.p, j.l, j.seed, gateways
				r, err := Run(ctx, c)
				mu.Lock()
				if err != nil {
					t.Error(err)
				} else {
					t.Logf("g%d %.2f %-16s s%d p50 %6.2f p99 %6s p999 %6s cp99 %6.2f drop %6d fail %5d spread %.3f cv %.3f",
						c.Gateways, j.l, j.p, j.seed, r.P50, secs(r.P99), secs(r.P999), r.CompletedP99, r.Dropped, r.Failed, r.UtilSpread, r.UtilCV)
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
}
