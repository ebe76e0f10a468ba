package live

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchyard-dev/switchyard/bench/affinity"
)

// Card is one kind of simulated engine in the live fleet.
type Card struct {
	// Name is the card ("h100", "a10"): its engines/sim profile, whose
	// capacity the node reports.
	Name string
	// Count is how many engines of the card run.
	Count int
	// Slots are the sequences an engine decodes at once; requests beyond
	// them wait in the engine's queue.
	Slots int
	// Prefill is the fixed part of a prefill and PrefillPerToken its cost
	// per prompt token not in the prefix cache; PerToken is the time per
	// output token.
	Prefill, PrefillPerToken, PerToken time.Duration
	// CacheBlocks is the prefix cache, in blocks of 16 tokens.
	CacheBlocks int
}

// Config is a live benchmark.
type Config struct {
	// Gateway is the command that runs the gateway without its flags,
	// e.g. {"/usr/local/bin/switchyard", "gateway"}; Run appends --config.
	Gateway []string
	// Env is added to the gateway's environment.
	Env []string
	// Cards is the fleet.
	Cards []Card
	// Workload is the traffic (bench/affinity's, scaled down).
	Workload affinity.Workload
	// Load is the offered request rate as a fraction of the fleet's
	// decode capacity: Σ Slots / (PerToken × mean output tokens).
	Load float64
	// Warmup is sent but not measured; Measure is the measured window.
	// Turns are sent only while arrivals run (Warmup + Measure).
	Warmup, Measure time.Duration
	// Drain bounds the wait for requests still running when arrivals
	// stop; a request unfinished then counts as lost.
	Drain time.Duration
	// Reps is how many times each policy runs, interleaved (on, off, on,
	// off, ...); repetition i uses seed Seed+i for both policies.
	Reps int
	Seed uint64
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Policies of the live run: the route's affinity on (what ships) and off.
const (
	PolicyDefault  = "default"
	PolicyLoadOnly = "load-only"
)

// DefaultConfig is the run of `make bench-affinity-live`: 2 H100 and 4
// Ascend 910B engines, load 0.7, 15 s of warm-up and 45 s measured per
// run, two repetitions of each policy (about 5 minutes in all).
//
// The engines keep the proportions of bench/affinity's cards: prefill at
// 25,000 tokens/s on an H100 (40 µs a token) and 8,000 on a 910B (125 µs);
// decode throughput in the ratio of their capacities (3.17 : 1): 32
// sequences at 48 ms a token against 12 at 56 ms. The sim decodes every
// running sequence at its per-token time and queues beyond its slots, so
// the slots stand for vLLM's large batches (a step is slower with more
// sequences, and requests queue only when the KV pool is full): many
// slots at a slow step keep the queue rare at this load, as in vLLM.
// Prefix caches of 9,360 and 4,320 blocks of 16 tokens are the
// simulation's KV pools. The workload is bench/affinity's with responses
// of 100 tokens on average instead of 214.5 and think times of 3 s
// instead of 20 s, so that a run takes a minute: the system prompts (1,200
// to 3,400 tokens), user messages and turns per conversation are
// unchanged.
func DefaultConfig() Config {
	w := affinity.DefaultWorkload()
	w.OutTokens, w.MaxOut = 100, 400
	w.Think = 3 * time.Second
	w.BatchOut = 60
	return Config{
		Cards: []Card{
			{Name: "h100", Count: 2, Slots: 32, Prefill: 10 * time.Millisecond, PrefillPerToken: 40 * time.Microsecond, PerToken: 48 * time.Millisecond, CacheBlocks: 9360},
			{Name: "910b", Count: 4, Slots: 12, Prefill: 10 * time.Millisecond, PrefillPerToken: 125 * time.Microsecond, PerToken: 56 * time.Millisecond, CacheBlocks: 4320},
		},
		Workload: w,
		Load:     0.7,
		Warmup:   15 * time.Second,
		Measure:  45 * time.Second,
		Drain:    30 * time.Second,
		Reps:     2,
		Seed:     1,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case len(c.Gateway) == 0:
		return errors.New("live: config: no gateway command")
	case len(c.Cards) == 0:
		return errors.New("live: config: no cards")
	case !(c.Load > 0 && c.Load <= 2):
		return fmt.Errorf("live: config: load %v: must be in (0, 2]", c.Load)
	case c.Warmup < 0 || c.Measure <= 0 || c.Drain <= 0:
		return fmt.Errorf("live: config: warmup %v, measure %v, drain %v: need warmup >= 0, measure and drain > 0", c.Warmup, c.Measure, c.Drain)
	case c.Reps < 1 || c.Reps > 20:
		return fmt.Errorf("live: config: reps %d: must be 1..20", c.Reps)
	case len(c.Workload.Families) == 0 || c.Workload.MeanTurns < 1:
		return errors.New("live: config: the workload needs families and mean turns >= 1")
	}
	for _, k := range c.Cards {
		if k.Name == "" || k.Count < 1 || k.Slots < 1 || k.PerToken <= 0 || k.Prefill < 0 || k.PrefillPerToken < 0 || k.CacheBlocks < 1 {
			return fmt.Errorf("live: config: card %q: count, slots, per_token and cache blocks must be positive", k.Name)
		}
	}
	return nil
}
