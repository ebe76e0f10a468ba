package policysim

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/bench/machine"
)

// MatrixConfig is a comparison: every policy at every load, from Base.
type MatrixConfig struct {
	Base     Config
	Loads    []float64
	Policies []string
	// Parallel is how many runs go at once. Default GOMAXPROCS.
	Parallel int
	// Log receives a line per finished run (default: discarded).
	Log io.Writer
}

// Matrix holds the results of a comparison, ordered by load then policy.
type Matrix struct {
	Config  MatrixConfig
	Results []*Result
	Started time.Time
	Elapsed time.Duration
}

// RunMatrix runs every (load, policy) pair of m.
func RunMatrix(ctx context.Context, m MatrixConfig) (*Matrix, error) {
	if len(m.Loads) == 0 || len(m.Policies) == 0 {
		return nil, fmt.Errorf("policysim: matrix: need at least one load and one policy")
	}
	if m.Parallel <= 0 {
		m.Parallel = runtime.GOMAXPROCS(0)
	}
	if m.Log == nil {
		m.Log = io.Discard
	}
	var cfgs []Config
	for _, l := range m.Loads {
		for _, p := range m.Policies {
			c := m.Base
			c.Load, c.Policy = l, p
			if err := c.Validate(); err != nil {
				return nil, err
			}
			cfgs = append(cfgs, c)
		}
	}
	out := &Matrix{Config: m, Results: make([]*Result, len(cfgs)), Started: time.Now()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		err1 error
	)
	for range m.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(cfgs) || ctx.Err() != nil {
					return
				}
				r, err := Run(ctx, cfgs[i])
				mu.Lock()
				if err != nil && err1 == nil {
					err1 = err
					cancel()
				}
				if r != nil {
					out.Results[i] = r
					fmt.Fprintf(m.Log, "policies: load %.2f %-13s p99 %s  dropped %d failed %d  (%s, %d events)\n",
						r.Load, r.Policy, secs(r.P99), r.Dropped, r.Failed, r.Wall.Round(time.Millisecond), r.Events)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err1 != nil {
		return nil, err1
	}
	out.Elapsed = time.Since(out.Started)
	return out, nil
}

func secs(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2f", v)
}

// at returns the result of policy at load, or nil.
func (m *Matrix) at(load float64, policy string) *Result {
	for _, r := range m.Results {
		if r != nil && r.Load == load && r.Policy == policy {
			return r
		}
	}
	return nil
}

// Winner returns, among the real policies (Policies(), not the Extras),
// the one with the lowest p99 at load (ties: the first in policy order),
// and whether dynamic-swrr's p99 is strictly below every other's.
func (m *Matrix) Winner(load float64) (best string, defaultWins bool) {
	bestV := math.Inf(1)
	for _, p := range m.Config.Policies {
		if slices.Contains(Extras(), p) {
			continue
		}
		r := m.at(load, p)
		if r == nil {
			continue
		}
		if r.P99 < bestV || best == "" {
			best, bestV = p, r.P99
		}
	}
	d := m.at(load, "dynamic-swrr")
	if d == nil {
		return best, false
	}
	for _, p := range m.Config.Policies {
		if slices.Contains(Extras(), p) {
			continue
		}
		if r := m.at(load, p); r != nil && p != "dynamic-swrr" && !(d.P99 < r.P99) {
			return best, false
		}
	}
	return best, true
}

// Tables returns one Markdown table per load.
func (m *Matrix) Tables() string {
	var b strings.Builder
	for _, l := range m.Config.Loads {
		fmt.Fprintf(&b, "\n### Load %.0f %%\n\n", l*100)
		b.WriteString("| policy | p50 s | p99 s | p99.9 s | p99 of completed s | dropped (queue full) | failed (churn) | completed | util mean | util max−min | util CV |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, p := range m.Config.Policies {
			r := m.at(l, p)
			if r == nil {
				continue
			}
			name := p
			switch p {
			case "dynamic-swrr":
				name = "**dynamic-swrr** (default)"
			default:
				if note := ExtraNote(p); note != "" {
					name = "*" + p + "* (" + note + ")"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %d (%.3f %%) | %d (%.3f %%) | %d | %.3f | %.3f | %.3f |\n",
				name, secs(r.P50), secs(r.P99), secs(r.P999), r.CompletedP99,
				r.Dropped, pct(r.Dropped, r.Arrived), r.Failed, pct(r.Failed, r.Arrived), r.Completed,
				r.UtilMean, r.UtilSpread, r.UtilCV)
		}
		best, wins := m.Winner(l)
		verdict := "does not have"
		if wins {
			verdict = "has"
		}
		fmt.Fprintf(&b, "\nLowest p99 among the seven policies: **%s**. The default (dynamic-swrr) %s the strictly lowest p99 at this load.\n", best, verdict)
	}
	return b.String()
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// TypeShares returns a Markdown table of each policy's share of completed
// requests per card type at load, next to the types' share of capacity.
func (m *Matrix) TypeShares(load float64) string {
	types := m.Config.Base.Types
	var b strings.Builder
	b.WriteString("| policy |")
	for _, t := range types {
		fmt.Fprintf(&b, " %s share / p99 s |", t.Name)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(types)) + "\n")
	for _, p := range m.Config.Policies {
		r := m.at(load, p)
		if r == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s |", p)
		for k := range types {
			h := &r.ByType[k]
			fmt.Fprintf(&b, " %.3f / %.1f |", float64(h.Count())/math.Max(float64(r.Completed), 1), float64(h.Quantile(0.99))/1e9)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Write writes dir/policies.md and its plots; command is the exact command
// line that produced m.
func (m *Matrix) Write(dir, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("policysim: %w", err)
	}
	if err := WriteCharts(dir, m.ChartData()); err != nil {
		return err
	}
	c := m.Config.Base
	var b strings.Builder
	b.WriteString("# Balancing policies at scale\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (%d runs, %s wall).\n\n", command, m.Started.UTC().Format("2006-01-02 15:04 MST"), len(m.Results), m.Elapsed.Round(time.Second))
	b.WriteString("The analysis (why the numbers are what they are, and what was changed) is in [policies-analysis.md](policies-analysis.md).\n\n")
	fmt.Fprintf(&b, "![p99 vs load](%s)\n\n![p99.9 vs load](%s)\n\n![utilisation spread](%s)\n\n![utilisation CV](%s)\n\n", P99Chart, P999Chart, SpreadChart, CVChart)
	b.WriteString("## Results\n\nLatency is from a request's arrival at the gateway to its completion, for requests that arrived after the warm-up. In p50/p99/p99.9, dropped and failed requests count as infinitely slow (∞ when more than that share failed); \"p99 of completed\" leaves them out. Utilisation is per node over the measured window, for nodes alive throughout.\n")
	b.WriteString(m.Tables())
	for _, l := range m.Config.Loads {
		if l >= 0.8 {
			fmt.Fprintf(&b, "\n#### Share of completed requests and p99 per card type at %.0f %%\n\n", l*100)
			b.WriteString(m.TypeShares(l))
		}
	}
	b.WriteString("\n## The simulation\n\n")
	fmt.Fprintf(&b, "- %d nodes at the start (bench/policysim, `DefaultConfig`); %s simulated with arrivals, the first %s not measured; seed %d. Every policy sees the same arrivals, request sizes, keys, noise and churn (common random numbers).\n", c.Nodes, c.Duration, c.Warmup, c.Seed)
	b.WriteString("- Fleet mix, capacity = cards × coefficient from engines/capacity (what the node reports to the balancer), slots = round(8 × capacity^0.7), mean service time = 8 s × capacity^−0.3:\n\n")
	b.WriteString("| type | share of nodes | capacity | slots | mean service s | nominal req/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range c.Types {
		fmt.Fprintf(&b, "| %s | %.0f %% | %.3f | %d | %.2f | %.3f |\n", t.Name, t.Share*100, t.Capacity, t.Slots, t.Service.Seconds(), float64(t.Slots)/t.Service.Seconds())
	}
	fmt.Fprintf(&b, "\n- Each node's true speed is its type's × a lognormal factor (σ = %.2f, mean 1) fixed for its life: the datasheet capacity is only approximately right. Request sizes are lognormal (σ = %.2f, mean 1). A node queues up to %d × its slots waiting requests; beyond that it answers 429 (dropped).\n", c.SpeedSigma, c.SizeSigma, c.QueueSlots)
	fmt.Fprintf(&b, "- Noisy neighbours: on average %.0f %% of nodes are slowed ×%.0f–×%.0f (uniform) for %s–%s (uniform) at a time.\n", c.NoisyShare*100, c.NoisyMinFactor, c.NoisyMaxFactor, c.NoisyMinTime, c.NoisyMaxTime)
	fmt.Fprintf(&b, "- Churn: %.0f %% of nodes leave per minute and as many new ones join (random type; slow start applies through the balancer's weighers). %.0f %% of departures are crashes (all running and queued work lost at once, the node listed until its heartbeats time out after %s; a pick that hits it is refused and retried once elsewhere), the rest graceful pre-emptions (offline in the next heartbeat, keeps serving, killed %s later).\n", c.ChurnPerMinute*100, c.CrashShare*100, c.HeartbeatTTL, c.Grace)
	fmt.Fprintf(&b, "- A node runs up to its slots at once and queues the rest inside the engine. Heartbeats every %s carry utilisation (busy slots / slots) and concurrency (running requests), both averaged over the last period, and the engine's running and waiting requests as read at the beat (queue-blind reports them unknown); the table is rebuilt every %s with balancer.NewBuilder(...).Build(nodes, now) on the simulated clock; requests Acquire their endpoint at pick and Release it when they finish, are dropped or are lost, so p2c and ring-hash see live in-flight counts.\n", c.Heartbeat, c.Rebuild)
	fmt.Fprintf(&b, "- Gateways: %d (each with its own tables and in-flight counts; arrivals spread evenly over them).\n", c.gateways())
	b.WriteString("- Offered load is a fraction of the starting fleet's nominal throughput (Σ slots / mean service time, no noise); noise and slow-starting joiners take a few percent of that away, so 95 % offered is close to saturation.\n")
	b.WriteString("- The balancer's own randomness (table counter offsets, p2c's and random's choices) comes from math/rand/v2's global source, which the simulation cannot seed, so reruns differ slightly for those policies.\n\n")
	b.WriteString("## Machine\n\n")
	b.WriteString(machine.Describe())
	return os.WriteFile(filepath.Join(dir, "policies.md"), []byte(b.String()), 0o644)
}
