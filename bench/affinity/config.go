package affinity

import (
	"fmt"
	"math"
	"time"

	"github.com/switchyard-dev/switchyard/engines/capacity"
	"github.com/switchyard-dev/switchyard/gateway/flow"
)

// Card is one kind of node: what it reports to the balancer and how fast
// it serves the model.
type Card struct {
	// Name is the card (or "cpu").
	Name string
	// Share is the fraction of the fleet's nodes of this kind.
	Share float64
	// Capacity is what the node reports: cards × the coefficient of
	// engines/capacity (cores × the core coefficient for CPU nodes).
	Capacity float64
	// TPOT is the time per output token at half of Batch: a decode step
	// of n sequences takes TPOT × (0.4 + 1.6 n/Batch).
	TPOT time.Duration
	// Batch is the batch size at which a decode step takes twice TPOT:
	// about the sequences the KV pool holds, so that the node's throughput
	// saturates where its memory does.
	Batch float64
	// PrefillRate is the prompt tokens per second the engine computes
	// (compute-bound; one prefill at a time per node).
	PrefillRate float64
	// KVBlocks is the KV pool in blocks of 16 tokens: what running
	// sequences use and the prefix cache keeps of the rest.
	KVBlocks int
}

// BlockTokens is the engine's KV block: vLLM's default block size.
const BlockTokens = 16

// Cards returns the fleet mix of bench/policysim (15 % H100, 25 % Ascend
// 910B, 35 % A10, 25 % 64-core CPU nodes, capacities from engines/capacity)
// with an engine's figures derived from the capacity c so that a node's
// throughput is proportional to it: Batch = 2.2 × 8·c^0.7 sequences,
// TPOT = 30 ms × c^−0.3 (21 ms on an H100, 56 ms on a CPU node; a lone
// sequence decodes at 0.4 TPOT),
// prefill 8,000 tokens/s × c. A saturated node (Batch sequences) decodes
// Batch / (2 TPOT) tokens a second.
//
// The KV pool bounds a loaded engine's concurrency, as in vLLM (it admits
// while blocks are free; max_num_seqs is rarely the limit): 240 blocks
// (3,840 tokens, a little more than a mean request) per sequence of Batch,
// at least 1,024 blocks (16k tokens, more than the longest request: MaxContext 12k and a response). A
// saturated node reports a KV usage near 1, and its prefix cache is what
// the running requests leave of the pool.
func Cards() []Card {
	tab := capacity.Default()
	type spec struct {
		name  string
		share float64
		cap   float64
	}
	specs := []spec{
		{"h100", 0.15, tab.ForCards("H100", 1).Value},
		{"910b", 0.25, tab.ForCards("Ascend910B", 1).Value},
		{"a10", 0.35, tab.ForCards("A10", 1).Value},
		{"cpu", 0.25, tab.CPU(64).Value},
	}
	out := make([]Card, len(specs))
	for i, s := range specs {
		batch := math.Round(2.2 * 8 * math.Pow(s.cap, 0.7))
		out[i] = Card{
			Name:        s.name,
			Share:       s.share,
			Capacity:    s.cap,
			TPOT:        time.Duration(30 * math.Pow(s.cap, -0.3) * float64(time.Millisecond)),
			Batch:       batch,
			PrefillRate: 8000 * s.cap,
			KVBlocks:    max(int(batch)*kvBlocksPerSeq, minKVBlocks),
		}
	}
	return out
}

// KV pool sizing (see Cards).
const (
	kvBlocksPerSeq = 240
	minKVBlocks    = 1024
)

// Fleet is a named fleet.
type Fleet struct {
	Name  string
	Nodes int
	Cards []Card
}

// Heterogeneous is the card mix of Cards on 240 nodes.
func Heterogeneous() Fleet { return Fleet{Name: "heterogeneous", Nodes: 240, Cards: Cards()} }

// Homogeneous is 200 H100 nodes, as a typical GIE InferencePool is one card
// type.
func Homogeneous() Fleet {
	h := Cards()[0]
	h.Share = 1
	return Fleet{Name: "homogeneous", Nodes: 200, Cards: []Card{h}}
}

// Family is a shared system prompt.
type Family struct {
	Tokens int
	Weight float64
}

// Workload is the traffic: multi-turn chat conversations plus a batch
// tenant.
//
// Lengths follow published chat statistics: LMSYS-Chat-1M (Zheng et al.,
// ICLR 2024, arXiv:2309.11998, Table 1) reports 69.5 tokens per user
// prompt, 214.5 per response and 2.0 turns per conversation; ShareGPT
// conversations are longer (about 3.5 turns). Turns here are 1 +
// geometric with mean MeanTurns (3), user messages and responses lognormal
// with those means. Long shared system prompts and think times are not in
// those datasets: system prompts are a few families of 1,200-3,400 tokens
// (agent and RAG templates), think time lognormal with mean 20 s.
type Workload struct {
	Families   []Family
	MeanTurns  float64
	UserTokens float64 // mean tokens of a user message
	UserSigma  float64
	OutTokens  float64 // mean tokens of a response
	OutSigma   float64
	MaxOut     int
	Think      time.Duration // mean think time
	ThinkSigma float64
	// MaxContext bounds a conversation: it ends before a turn whose
	// prompt and response would exceed it (tokens).
	MaxContext int

	// BatchShare is the batch tenant's share of requests: single-turn
	// jobs of a shared BatchPrefix-token instruction and a document.
	BatchShare    float64
	BatchPrefix   int
	BatchDoc      float64 // mean document tokens
	BatchDocSigma float64
	BatchOut      float64 // mean output tokens
}

// DefaultWorkload returns the workload described on Workload.
func DefaultWorkload() Workload {
	return Workload{
		Families:   []Family{{1200, 0.4}, {1800, 0.3}, {2600, 0.2}, {3400, 0.1}},
		MeanTurns:  3,
		UserTokens: 69.5, UserSigma: 1.0,
		OutTokens: 214.5, OutSigma: 0.8, MaxOut: 1024,
		Think: 20 * time.Second, ThinkSigma: 0.8, MaxContext: 12000,
		BatchShare: 0.15, BatchPrefix: 400, BatchDoc: 1200, BatchDocSigma: 0.5, BatchOut: 120,
	}
}

// Config is one run.
type Config struct {
	Fleet    Fleet
	Workload Workload
	// Load is the offered request rate as a fraction of the fleet's
	// decode capacity: Σ Batch / (2 TPOT × mean output tokens).
	Load   float64
	Policy string
	Seed   uint64
	// Duration is the simulated time with arrivals; Warmup its first part,
	// not measured.
	Duration, Warmup time.Duration
	// SpeedSigma spreads nodes' true speed around their card's (lognormal,
	// mean 1, fixed per node).
	SpeedSigma float64
	// Refresh is how often engine metrics (queue, KV usage, running,
	// prefix-cache counts) reach the picker, for every policy; Rebuild is
	// the balancer's table period.
	Refresh, Rebuild time.Duration

	// Burst, when set, adds batch requests at Burst.Load × capacity
	// during [Burst.At, Burst.At+Burst.For).
	Burst *Burst
	// FlowControl makes the gateway hold each node to Batch requests and
	// queue the rest in gateway/flow's order (interactive first, tenants
	// in turn), as the burst scenario does.
	FlowControl bool
	// Reserve is flow.Config.Reserve: the share of the route's slots
	// batch requests leave to interactive ones.
	Reserve float64
	// MaxQueued, QueueTimeout and BatchTimeout are the route's
	// queue.max_queued, queue.timeout and queue.batch_timeout under flow
	// control; 0 for the gateway's defaults (flow.DefaultMaxQueued,
	// DefaultTimeout, DefaultBatchTimeout). A full queue turns an arrival
	// away, or displaces the newest batch waiter for an interactive one,
	// as gateway/flow does; both count as lost.
	MaxQueued                  int
	QueueTimeout, BatchTimeout time.Duration
}

// queueSettings returns MaxQueued and the deadlines by class in seconds,
// the gateway's defaults where unset.
func (c *Config) queueSettings() (maxQueued int, deadlines [2]float64) {
	maxQueued, interactive, batch := c.MaxQueued, c.QueueTimeout, c.BatchTimeout
	if maxQueued == 0 {
		maxQueued = flow.DefaultMaxQueued
	}
	if interactive == 0 {
		interactive = flow.DefaultTimeout
	}
	if batch == 0 {
		batch = flow.DefaultBatchTimeout
	}
	return maxQueued, [2]float64{interactive.Seconds(), batch.Seconds()}
}

// Burst is a surge of batch work.
type Burst struct {
	At, For time.Duration
	// Load is the extra batch request rate as a fraction of capacity.
	Load float64
}

// DefaultConfig returns a run of the default policy at load 0.7 on the
// heterogeneous fleet: 10 simulated minutes, 3 of them warm-up, engine
// metrics every second, tables every 3 s.
func DefaultConfig() Config {
	return Config{
		Fleet:      Heterogeneous(),
		Workload:   DefaultWorkload(),
		Load:       0.7,
		Policy:     "default",
		Seed:       1,
		Duration:   10 * time.Minute,
		Warmup:     3 * time.Minute,
		SpeedSigma: 0.15,
		Refresh:    time.Second,
		Rebuild:    3 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Fleet.Nodes < 1 || c.Fleet.Nodes > maxNodes:
		return fmt.Errorf("affinity: config: nodes %d: must be 1..%d", c.Fleet.Nodes, maxNodes)
	case len(c.Fleet.Cards) == 0:
		return fmt.Errorf("affinity: config: fleet %q has no cards", c.Fleet.Name)
	case !(c.Load > 0 && c.Load <= 3):
		return fmt.Errorf("affinity: config: load %v: must be in (0, 3]", c.Load)
	case c.Duration <= 0 || c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("affinity: config: duration %v, warmup %v: need 0 <= warmup < duration", c.Duration, c.Warmup)
	case c.Refresh <= 0 || c.Rebuild <= 0:
		return fmt.Errorf("affinity: config: refresh and rebuild must be positive")
	case len(c.Workload.Families) == 0 || c.Workload.MeanTurns < 1:
		return fmt.Errorf("affinity: config: workload needs families and mean turns >= 1")
	case c.MaxQueued < 0 || c.QueueTimeout < 0 || c.BatchTimeout < 0:
		return fmt.Errorf("affinity: config: max_queued and the queue timeouts must not be negative (0 for the gateway's defaults)")
	}
	for _, k := range c.Fleet.Cards {
		if k.Batch < 1 || k.TPOT <= 0 || k.PrefillRate <= 0 || k.KVBlocks*BlockTokens < c.Workload.MaxContext+c.Workload.MaxOut {
			return fmt.Errorf("affinity: config: card %q: batch, TPOT and prefill rate must be positive, the KV pool above the longest request", k.Name)
		}
	}
	if _, ok := policies[c.Policy]; !ok {
		return fmt.Errorf("affinity: config: unknown policy %q (want one of %v)", c.Policy, PolicyNames())
	}
	return nil
}

// maxNodes is the most nodes a run may have: the scorer baselines keep
// node sets as 256-bit masks.
const maxNodes = 256
