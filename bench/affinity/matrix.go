package affinity

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
)

// MatrixConfig is the comparison: every policy on every fleet at every
// load, plus the refresh sensitivity and the burst scenario.
type MatrixConfig struct {
	Fleets   []Fleet
	Loads    []float64
	Policies []string
	// Seed is the first load's seed; load i runs with Seed+i on every
	// fleet and policy (common random numbers within a load).
	Seed             uint64
	Duration, Warmup time.Duration
	// Refresh is the engine-metrics interval of the main runs.
	Refresh time.Duration
	// Sensitivity adds runs at SensitivityRefresh for the policies that
	// read engine metrics, at load 0.7.
	Sensitivity        bool
	SensitivityRefresh time.Duration
	// Burst adds the burst scenario on the heterogeneous fleet, with
	// BurstSeeds seeds (each with its unloaded reference).
	Burst      bool
	BurstSeeds int
	// ManyPrefixes adds runs of a workload the prefix scorers were built
	// for: 400 distinct 800-token system prompts, homogeneous fleet, load
	// 0.7.
	ManyPrefixes bool
	// Parallel is how many runs go at once. Default GOMAXPROCS.
	Parallel int
	// Log receives a line per finished run.
	Log io.Writer
}

// DefaultMatrix returns the comparison `switchyard bench affinity` runs.
func DefaultMatrix() MatrixConfig {
	return MatrixConfig{
		Fleets:             []Fleet{Heterogeneous(), Homogeneous()},
		Loads:              []float64{0.5, 0.7, 0.9},
		Policies:           append(Policies(), Extras()...),
		Seed:               1,
		Duration:           7 * time.Minute,
		Warmup:             2 * time.Minute,
		Refresh:            50 * time.Millisecond,
		Sensitivity:        true,
		SensitivityRefresh: time.Second,
		Burst:              true,
		BurstSeeds:         3,
		ManyPrefixes:       true,
	}
}

// BurstMaxQueued is the queue.max_queued the burst scenario needs: the
// backlog of a burst at twice capacity for 30 s on a 240-node route is
// several thousand requests, above the gateway's default
// (flow.DefaultMaxQueued, 1024), which would turn the excess away with
// 429 and Retry-After instead of letting it wait. A route this large
// should set max_queued to what a burst it must absorb leaves waiting.
const BurstMaxQueued = 8192

// BurstScenario returns the burst run and its unloaded reference: the
// default policy with flow control (each node held to Batch requests,
// batch at most 80 % of the route's slots) on the heterogeneous fleet; a
// base load of 0.7, then batch jobs at 1.3 × capacity for 30 s (twice
// capacity in all); the reference runs at load 0.2. The queue has the
// gateway's default timeouts (30 s interactive, 5 min batch) and
// BurstMaxQueued places.
func BurstScenario(m MatrixConfig, k int) (burst, unloaded Config) {
	base := DefaultConfig()
	base.Fleet = Heterogeneous()
	base.Policy = "default"
	base.Seed = m.Seed + 100 + uint64(k)
	base.Duration, base.Warmup = m.Duration, m.Warmup
	base.Refresh = m.Refresh
	base.FlowControl = true
	base.Reserve = 0.2
	base.MaxQueued = BurstMaxQueued
	burst, unloaded = base, base
	burst.Load = 0.7
	burst.Burst = &Burst{At: m.Warmup + time.Minute, For: 30 * time.Second, Load: 1.3}
	unloaded.Load = 0.2
	return burst, unloaded
}

// Run kinds in a Matrix.
const (
	KindMain = iota
	KindSensitivity
	KindBurst
	KindUnloaded
	KindManyPrefixes
)

// ManyPrefixes returns the workload of MatrixConfig.ManyPrefixes.
func ManyPrefixes() Workload {
	w := DefaultWorkload()
	w.Families = make([]Family, 400)
	for i := range w.Families {
		w.Families[i] = Family{Tokens: 800, Weight: 1}
	}
	return w
}

// MatrixRun is one run of a Matrix.
type MatrixRun struct {
	Kind   int
	Config Config
	Result *Result
}

// Matrix holds a comparison's runs.
type Matrix struct {
	Config  MatrixConfig
	Runs    []*MatrixRun
	Started time.Time
	Elapsed time.Duration
	// LoadAvg is /proc/loadavg's one-minute figure before and after.
	LoadAvg [2]float64
}

// RunMatrix runs every configuration of m.
func RunMatrix(ctx context.Context, m MatrixConfig) (*Matrix, error) {
	if len(m.Fleets) == 0 || len(m.Loads) == 0 || len(m.Policies) == 0 {
		return nil, fmt.Errorf("affinity: matrix: need fleets, loads and policies")
	}
	if m.Parallel <= 0 {
		m.Parallel = runtime.GOMAXPROCS(0)
	}
	if m.Log == nil {
		m.Log = io.Discard
	}
	out := &Matrix{Config: m, Started: time.Now()}
	out.LoadAvg[0] = loadAvg()
	add := func(kind int, c Config) error {
		if err := c.Validate(); err != nil {
			return err
		}
		out.Runs = append(out.Runs, &MatrixRun{Kind: kind, Config: c})
		return nil
	}
	base := DefaultConfig()
	base.Duration, base.Warmup, base.Refresh = m.Duration, m.Warmup, m.Refresh
	// The burst runs first: it is the longest single run.
	if m.Burst {
		for k := range max(m.BurstSeeds, 1) {
			b, u := BurstScenario(m, k)
			if err := add(KindBurst, b); err != nil {
				return nil, err
			}
			if err := add(KindUnloaded, u); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range m.Fleets {
		for li, l := range m.Loads {
			for _, p := range m.Policies {
				c := base
				c.Fleet, c.Load, c.Policy, c.Seed = f, l, p, m.Seed+uint64(li)
				if err := add(KindMain, c); err != nil {
					return nil, err
				}
			}
		}
		if m.Sensitivity {
			for _, p := range []string{"default", "gie-scorer", "llm-d-scorer"} {
				c := base
				c.Fleet, c.Load, c.Policy, c.Seed = f, 0.7, p, m.Seed+uint64(indexOf(m.Loads, 0.7))
				c.Refresh = m.SensitivityRefresh
				if err := add(KindSensitivity, c); err != nil {
					return nil, err
				}
			}
		}
	}
	if m.ManyPrefixes {
		for _, p := range []string{"default", "load-only", "gie-scorer", "llm-d-scorer"} {
			c := base
			c.Fleet, c.Load, c.Policy, c.Seed, c.Workload = Homogeneous(), 0.7, p, m.Seed+200, ManyPrefixes()
			if err := add(KindManyPrefixes, c); err != nil {
				return nil, err
			}
		}
	}
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
				if i >= len(out.Runs) || ctx.Err() != nil {
					return
				}
				run := out.Runs[i]
				r, err := Run(ctx, run.Config)
				mu.Lock()
				if err != nil && err1 == nil {
					err1 = err
					cancel()
				}
				if r != nil {
					run.Result = r
					fmt.Fprintf(m.Log, "affinity: %-13s %-13s load %.1f refresh %-5v TTFT p50 %s p99 %s  hit %.3f  (%s)\n",
						run.Config.Fleet.Name, r.Policy, r.Load, run.Config.Refresh, secs(Seconds(&r.TTFT, 0.5)), secs(Seconds(&r.TTFT, 0.99)), r.HitRate(), r.Wall.Round(time.Millisecond))
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
	out.LoadAvg[1] = loadAvg()
	return out, nil
}

func indexOf(xs []float64, x float64) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return 0
}

func secs(v float64) string {
	switch {
	case v != v:
		return "–"
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// find returns the result of a run, or nil.
func (m *Matrix) find(kind int, fleet, policy string, load float64) *Result {
	for _, r := range m.Runs {
		if r.Kind == kind && r.Result != nil && r.Config.Fleet.Name == fleet && r.Config.Policy == policy && r.Config.Load == load {
			return r.Result
		}
	}
	return nil
}
