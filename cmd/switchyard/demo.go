package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/switchyard-dev/switchyard/bench/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stdout, stderr)
	d := demo.Config{}
	fs.DurationVar(&d.Duration, "duration", 0, "how long the workload runs (default 30s, at least 10s)")
	fs.Float64Var(&d.Load, "load", 0, "offered load as a share of the fleet's throughput (default 0.5)")
	fs.Float64Var(&d.StreamShare, "stream-share", 0, "share of requests that are streaming chat completions; the rest are KServe v2 infer (default 0.5)")
	fs.StringVar(&d.OutDir, "out", "demo-out", "directory for the charts (shares.png, utilisation.png, latency-cdf.png) and summary.json")
	asJSON := fs.Bool("json", false, "print the summary as JSON instead of the text report")
	quiet := fs.Bool("quiet", false, "no progress lines (the same as --log-level warn)")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the switchyard binary for the agents: %w", err)
	}
	d.Agent = []string{exe, "agent"}
	if !*quiet {
		d.Log = newLogWriter(log) // progress lines, in the chosen format
	}
	rep, err := demo.Run(ctx, d)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(d.OutDir, "summary.json"))
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if *asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
		fmt.Fprintf(stdout, "Charts and summary.json in %s/\n", d.OutDir)
	}
	if !rep.Passed() {
		return errors.New("the demo's checks failed (client errors, or an ejection over 4 s)")
	}
	return nil
}
