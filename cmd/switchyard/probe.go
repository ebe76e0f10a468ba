package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/capacity"
	"github.com/switchyard-dev/switchyard/engines/probe"
)

// runAgentProbe implements `switchyard agent probe`: print as JSON what
// the agent would report (engine load, accelerators, capacity,
// utilisation, concurrency), from live sources or from one saved output.
func runAgentProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent probe", "agent probe [--source KIND --file PATH] [--engine NAME --metrics-url URL] [flags]", stdout, stderr)
	source := fs.String("source", "", "kind of saved output to read: "+strings.Join(probe.Kinds(), ", "))
	file := fs.String("file", "", "saved output to read (with --source; - is stdin)")
	fields := fs.String("fields", "", "nvidia-smi field list for csv,noheader output (comma-separated, as passed to --query-gpu)")
	engine := fs.String("engine", "", "live: engine whose metrics --metrics-url serves: "+strings.Join(engines.Names(), ", "))
	metricsURL := fs.String("metrics-url", "", "live: engine metrics URL, e.g. http://127.0.0.1:8000/metrics (mindie default: https://127.0.0.2:1027/metrics)")
	engineCA := fs.String("engine-ca", "", "live: trust the PEM CA bundle in `FILE` for the engine's HTTPS metrics (e.g. MindIE's self-signed certificate)")
	rayDashboard := fs.String("ray-dashboard", "", "live: Ray dashboard URL (e.g. http://127.0.0.1:8265) to read Serve applications from")
	dcgmURL := fs.String("dcgm-url", "", "live: DCGM exporter metrics URL")
	npuExporterURL := fs.String("npu-exporter-url", "", "live: Ascend npu-exporter metrics URL")
	noTools := fs.Bool("no-tools", false, "live: do not run nvidia-smi, npu-smi or rocm-smi")
	procStat := fs.String("proc-stat", "/proc/stat", "live: /proc/stat path")
	cpuMax := fs.String("cpu-max", "/sys/fs/cgroup/cpu.max", "live: cgroup v2 cpu.max path")
	capFile := fs.String("capacity-file", "", "card coefficient YAML overriding the built-in table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent probe: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	tab := capacity.Default()
	if *capFile != "" {
		t, err := capacity.Load(*capFile)
		if err != nil {
			return err
		}
		tab = t
	}
	var rep probe.Report
	switch {
	case *source != "" || *file != "":
		if *source == "" || *file == "" {
			fmt.Fprintln(stderr, "agent probe: --source and --file go together")
			return errUsage
		}
		if err := probe.CheckKind(*source); err != nil {
			fmt.Fprintf(stderr, "agent probe: --source: %v\n", err)
			return errUsage
		}
		var r io.Reader = os.Stdin
		if *file != "-" {
			f, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		var fl []string
		if *fields != "" {
			for _, f := range strings.Split(*fields, ",") {
				fl = append(fl, strings.TrimSpace(f))
			}
		}
		var err error
		rep, err = probe.ParseSource(*source, r, probe.SourceOptions{Fields: fl, Capacity: tab})
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	default:
		murl := *metricsURL
		if murl == "" && *engine != "" {
			_, def, err := agent.EngineURLs(*engine, "")
			if err != nil {
				return err
			}
			murl = def
		}
		scrape, _, err := engineClients(*engineCA)
		if err != nil {
			return err
		}
		rep, err = probe.Sample(ctx, probe.Config{Engine: *engine, MetricsURL: murl, HTTPClient: scrape, RayDashboard: *rayDashboard, DCGMURL: *dcgmURL,
			NPUExporterURL: *npuExporterURL, NoTools: *noTools, ProcStat: *procStat, CPUMax: *cpuMax, Capacity: tab})
		if err != nil {
			return err
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
