package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/chaos"
)

func runBenchChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench chaos", "bench chaos [flags]", stdout, stderr)
	var cfg chaos.Config
	var only, out string
	var list bool
	fs.BoolVar(&cfg.Quick, "quick", false, "run the CI subset only: "+strings.Join(chaos.QuickNames(), ", "))
	fs.StringVar(&only, "cases", "", "comma-separated case names to run instead (see --list)")
	fs.BoolVar(&list, "list", false, "print the case names and exit")
	fs.StringVar(&out, "out", "", "also write the report (markdown) to this file")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the run's files and logs (default: a new temporary directory, kept)")
	fs.StringVar(&cfg.Note, "note", "", "a line for the report about the run, e.g. what else the machine was doing")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if list {
		for _, n := range chaos.CaseNames() {
			fmt.Fprintln(stdout, n)
		}
		return nil
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	if cfg.Bin, err = os.Executable(); err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cfg.Command = commandLine()
	cfg.Log = newLogWriter(log)
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Table())
	if f := rep.Failures(); f != "" {
		fmt.Fprint(stdout, "\nFailures:\n"+f)
	}
	fmt.Fprintf(stdout, "\n%s\nbinary built from %s\nfiles and logs: %s\n", rep.Summary(), rep.Build, rep.Dir)
	if out != "" {
		if err := os.WriteFile(out, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", out)
	}
	if rep.Failed() {
		return errors.New("the chaos suite failed: " + rep.Summary())
	}
	return nil
}
