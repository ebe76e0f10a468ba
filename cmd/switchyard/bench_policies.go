package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/policysim"
)

func runBenchPolicies(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench policies", "bench policies [flags]", stdout, stderr)
	def := policysim.DefaultConfig()
	var m policysim.MatrixConfig
	var loads, policies, out string
	fs.IntVar(&m.Base.Nodes, "nodes", def.Nodes, "fleet size")
	fs.DurationVar(&m.Base.Duration, "duration", def.Duration, "simulated time with arrivals")
	fs.DurationVar(&m.Base.Warmup, "warmup", def.Warmup, "simulated warm-up, not measured")
	fs.Uint64Var(&m.Base.Seed, "seed", def.Seed, "simulation seed")
	fs.IntVar(&m.Base.Gateways, "gateways", 1, "gateways sharing the fleet, each with its own tables and in-flight counts")
	fs.StringVar(&loads, "loads", "0.5,0.8,0.9,0.95", "comma-separated offered loads (fractions of capacity)")
	all := append(policysim.Policies(), policysim.Extras()...)
	fs.StringVar(&policies, "policies", "", "comma-separated policies (default all: "+strings.Join(all, ", ")+"; the last four take the default apart: the default with engine queues unknown, the default before issue 7's follow-up, its two choices over capacity weights, its weights with one choice)")
	fs.IntVar(&m.Parallel, "parallel", 0, "runs at once (default GOMAXPROCS)")
	fs.StringVar(&out, "out", "bench/results", "directory for policies.md and its charts (empty: print only)")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	base := m.Base
	m.Base = def
	m.Base.Nodes, m.Base.Duration, m.Base.Warmup, m.Base.Seed, m.Base.Gateways = base.Nodes, base.Duration, base.Warmup, base.Seed, base.Gateways
	for _, s := range strings.Split(loads, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("loads: %q: %w", s, err)
		}
		m.Loads = append(m.Loads, v)
	}
	m.Policies = all
	if policies != "" {
		m.Policies = strings.Split(policies, ",")
	}
	m.Log = newLogWriter(log) // a line per finished run, in the chosen format
	start := time.Now()
	rep, err := policysim.RunMatrix(ctx, m)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Tables())
	fmt.Fprintf(stdout, "\n%d runs in %s\n", len(rep.Results), time.Since(start).Round(time.Second))
	if out != "" {
		if err := rep.Write(out, commandLine()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/policies.md\n", out)
	}
	return nil
}
