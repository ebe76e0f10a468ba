package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/compare"
	"github.com/switchyard-dev/switchyard/bench/policysim"
)

// runBenchReplot redraws the charts of the reports in a directory from
// the reports' own tables, without rerunning the benchmarks.
func runBenchReplot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench replot", "bench replot [--dir DIR]", stdout, stderr)
	dir := fs.String("dir", "bench/results", "directory of the reports (proxy-compare*.md, policies.md) whose charts to redraw")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	reports, err := filepath.Glob(filepath.Join(*dir, "*.md"))
	if err != nil {
		return err
	}
	drawn := 0
	for _, path := range reports {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		md := string(b)
		prefix := strings.TrimSuffix(filepath.Base(path), ".md")
		switch {
		case strings.HasPrefix(md, "# Proxy comparison"):
			rows, err := compare.ParseTable(md)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := compare.WriteCharts(*dir, prefix, rows); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: wrote %s-rps.png, %s-latency.png, %s-cpu.png\n", path, prefix, prefix, prefix)
		case strings.HasPrefix(md, "# Balancing policies at scale\n"):
			data, err := policysim.ParseTables(md)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := policysim.WriteCharts(*dir, data); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: wrote %s, %s, %s, %s\n", path, policysim.P99Chart, policysim.P999Chart, policysim.SpreadChart, policysim.CVChart)
		default:
			continue
		}
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("no proxy-comparison or policy report in %s", *dir)
	}
	return nil
}
