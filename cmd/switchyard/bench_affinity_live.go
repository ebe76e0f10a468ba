package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/bench/affinity/live"
)

// liveFlag selects the live run in `bench affinity --live`.
func liveFlag(args []string) ([]string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--live" || a == "-live" {
			return slices.Delete(slices.Clone(args), i, i+1), true
		}
	}
	return args, false
}

func runBenchAffinityLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench affinity --live", "bench affinity --live [flags]", stdout, stderr)
	cfg := live.DefaultConfig()
	var out string
	fs.Float64Var(&cfg.Load, "load", cfg.Load, "offered load, a fraction of the fleet's decode capacity")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "traffic sent before the measured window, per run")
	fs.DurationVar(&cfg.Measure, "measure", cfg.Measure, "measured window per run")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "longest wait for requests in flight when arrivals stop; unfinished ones count as lost")
	fs.IntVar(&cfg.Reps, "reps", cfg.Reps, "repetitions of each policy (affinity on, off), interleaved; repetition i uses seed+i")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the first repetition")
	fs.StringVar(&out, "out", "bench/results", "directory for affinity-live.md, affinity-live.json and the charts (empty: print only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cfg.Gateway = []string{self, "gateway"}
	cfg.Log = stderr
	start := time.Now()
	rep, err := live.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Table())
	s := rep.Summary()
	fmt.Fprintf(stdout, "hit rate %.3f with affinity vs %.3f without (higher every repetition: %v); TTFT p50 %.3fs vs %.3fs (lower every repetition: %v); lost %d; %s\n",
		s.HitRate[live.PolicyDefault], s.HitRate[live.PolicyLoadOnly], s.HitRateUp, s.TTFTP50[live.PolicyDefault], s.TTFTP50[live.PolicyLoadOnly], s.TTFTDown, s.Lost, time.Since(start).Round(time.Second))
	if out != "" {
		if err := rep.Write(out, commandLine()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/affinity-live.md\n", out)
	}
	if s.Lost > 0 {
		return fmt.Errorf("%d requests lost", s.Lost)
	}
	return nil
}
