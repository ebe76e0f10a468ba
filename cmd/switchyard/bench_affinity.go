package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/affinity"
)

func runBenchAffinity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if rest, ok := liveFlag(args); ok {
		return runBenchAffinityLive(ctx, rest, stdout, stderr)
	}
	fs := newFlagSet("bench affinity", "bench affinity [--live] [flags]", stdout, stderr)
	def := affinity.DefaultMatrix()
	m := def
	var loads, policies, fleets, out string
	fs.StringVar(&loads, "loads", "0.5,0.7,0.9", "comma-separated offered loads (fractions of decode capacity)")
	fs.StringVar(&policies, "policies", "", "comma-separated policies (default: all of "+strings.Join(def.Policies, ", ")+")")
	fs.StringVar(&fleets, "fleets", "heterogeneous,homogeneous", "comma-separated fleets: heterogeneous (240 nodes of the policy benchmark's card mix), homogeneous (200 H100 nodes)")
	fs.Uint64Var(&m.Seed, "seed", def.Seed, "seed of the first load (load i uses seed+i)")
	fs.DurationVar(&m.Duration, "duration", def.Duration, "simulated time with arrivals")
	fs.DurationVar(&m.Warmup, "warmup", def.Warmup, "simulated warm-up, not measured")
	fs.DurationVar(&m.Refresh, "refresh", def.Refresh, "engine-metrics interval for every policy")
	fs.BoolVar(&m.Sensitivity, "sensitivity", def.Sensitivity, "also run the metric-reading policies with 1 s metrics at load 0.7")
	fs.BoolVar(&m.Burst, "burst", def.Burst, "also run the burst scenario (twice capacity for 30 s, flow control)")
	fs.IntVar(&m.BurstSeeds, "burst-seeds", def.BurstSeeds, "seeds of the burst scenario")
	fs.BoolVar(&m.ManyPrefixes, "many-prefixes", def.ManyPrefixes, "also run 400 distinct system prompts on the homogeneous fleet at load 0.7")
	fs.IntVar(&m.Parallel, "parallel", 0, "runs at once (default GOMAXPROCS)")
	fs.StringVar(&out, "out", "bench/results", "directory for affinity.md, affinity.json and the plots (empty: print only)")
	fs.Bool("live", false, "run the live benchmark instead: the real gateway with simulated engines, affinity on against off (see bench affinity --live --help)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	m.Loads = m.Loads[:0]
	for _, s := range strings.Split(loads, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("loads: %q: %w", s, err)
		}
		m.Loads = append(m.Loads, v)
	}
	if policies != "" {
		m.Policies = strings.Split(policies, ",")
	}
	m.Fleets = nil
	for _, f := range strings.Split(fleets, ",") {
		switch strings.TrimSpace(f) {
		case "heterogeneous":
			m.Fleets = append(m.Fleets, affinity.Heterogeneous())
		case "homogeneous":
			m.Fleets = append(m.Fleets, affinity.Homogeneous())
		default:
			return fmt.Errorf("fleets: %q: want heterogeneous or homogeneous", f)
		}
	}
	m.Log = stderr
	start := time.Now()
	rep, err := affinity.RunMatrix(ctx, m)
	if err != nil {
		return err
	}
	for _, t := range rep.Targets() {
		met := "MISSED"
		if t.Met {
			met = "met"
		}
		fmt.Fprintf(stdout, "%-6s %s: %s\n", met, t.What, t.Detail)
	}
	fmt.Fprintf(stdout, "%d runs in %s\n", len(rep.Runs), time.Since(start).Round(time.Second))
	if out != "" {
		if err := rep.Write(out, commandLine()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/affinity.md and %s/affinity.json\n", out, out)
	}
	return nil
}
