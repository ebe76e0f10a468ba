package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	_ "github.com/switchyard-dev/switchyard/engines/all" // register every adapter
	"github.com/switchyard-dev/switchyard/engines/capacity"
	"github.com/switchyard-dev/switchyard/engines/rayserve"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
	"github.com/switchyard-dev/switchyard/engines/telemetry/amd"
	"github.com/switchyard-dev/switchyard/engines/telemetry/ascend"
	"github.com/switchyard-dev/switchyard/engines/telemetry/cpu"
	"github.com/switchyard-dev/switchyard/engines/telemetry/nvidia"
)

// ErrConfig wraps Config validation errors.
var ErrConfig = errors.New("probe: invalid config")

// Config says what to sample. The zero Config samples accelerators found
// on PATH and the CPU, and no engine.
type Config struct {
	// Engine is the dialect name or alias ("vllm", "sglang", "tgi",
	// "triton", "mindie", "rayserve", "trtllm-serve"; engines.Names())
	// whose metrics MetricsURL serves. Both empty: no engine probe.
	Engine     string
	MetricsURL string
	// RayDashboard, when set (e.g. "http://10.0.0.1:8265"), is read for
	// the Ray Serve applications, deployments, replicas and proxies.
	RayDashboard string
	// DCGMURL and NPUExporterURL, when set, are scraped as accelerator
	// sources (before the command-line tools).
	DCGMURL        string
	NPUExporterURL string
	// NoTools disables running nvidia-smi, npu-smi and rocm-smi.
	NoTools bool
	// ProcStat is /proc/stat's path (default "/proc/stat"); CPUMax the
	// cgroup v2 cpu.max path (default "/sys/fs/cgroup/cpu.max"; a
	// missing file means no quota).
	ProcStat string
	CPUMax   string
	// CPUInterval is how long the first Sample waits between two
	// /proc/stat reads (default 200ms); later samples use the previous one.
	CPUInterval time.Duration
	// Capacity is the coefficient table (default capacity.Default()).
	Capacity *capacity.Table
	// Timeout bounds each source (default 3s).
	Timeout time.Duration
	// HTTPClient is used for URLs (default http.DefaultClient).
	HTTPClient *http.Client
}

// Validate applies defaults and checks the Config.
func (c *Config) Validate() error {
	if (c.Engine == "") != (c.MetricsURL == "") {
		return fmt.Errorf("%w: Engine and MetricsURL go together (engine %q, url %q)", ErrConfig, c.Engine, c.MetricsURL)
	}
	if c.Engine != "" {
		if _, err := engines.Lookup(c.Engine); err != nil {
			return fmt.Errorf("%w: Engine: %w", ErrConfig, err)
		}
	}
	if c.ProcStat == "" {
		c.ProcStat = "/proc/stat"
	}
	if c.CPUMax == "" {
		c.CPUMax = "/sys/fs/cgroup/cpu.max"
	}
	if c.CPUInterval <= 0 {
		c.CPUInterval = 200 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Capacity == nil {
		c.Capacity = capacity.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return nil
}

// EngineReport is the engine part of a Report.
type EngineReport struct {
	Name  string          `json:"name"`
	URL   string          `json:"url,omitempty"`
	Load  *engines.Load   `json:"load,omitempty"`
	Error string          `json:"error,omitempty"`
	Ray   *RayServeReport `json:"rayserve,omitempty"`
}

// RayServeReport is a parsed Ray Serve dashboard answer.
type RayServeReport struct {
	Cluster rayserve.Cluster `json:"cluster"`
	Routes  []rayserve.Route `json:"routes"`
}

// Report is what the agent would send.
type Report struct {
	Engine       *EngineReport      `json:"engine,omitempty"`
	Accelerators []telemetry.Report `json:"accelerators"`
	CPU          *telemetry.Report  `json:"cpu,omitempty"`
	// Capacity is Σ cards × coefficient over the accelerators, or the
	// CPU cores × core coefficient when there are none.
	Capacity capacity.Capacity `json:"capacity"`
	// Utilization 0..1: the mean accelerator utilisation, else the CPU's.
	Utilization engines.Value `json:"utilization"`
	// Concurrency is the engine's running requests.
	Concurrency engines.Value `json:"concurrency"`
	Warnings    []string      `json:"warnings,omitempty"`
}

// Prober samples repeatedly, remembering the last /proc/stat sample.
type Prober struct {
	cfg Config // immutable after New

	mu      sync.Mutex
	lastCPU *cpu.Stat // guarded by mu
}

// New validates cfg and returns a Prober.
func New(cfg Config) (*Prober, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Prober{cfg: cfg}, nil
}

// Sample is the one-shot form of New(cfg).Sample(ctx).
func Sample(ctx context.Context, cfg Config) (Report, error) {
	p, err := New(cfg)
	if err != nil {
		return Report{}, err
	}
	return p.Sample(ctx)
}

// Sample takes one sample. Source failures become Warnings.
func (p *Prober) Sample(ctx context.Context) (Report, error) {
	var r Report
	c := &p.cfg
	if c.Engine != "" {
		a, _ := engines.Lookup(c.Engine)
		er := &EngineReport{Name: a.Name(), URL: c.MetricsURL}
		sctx, cancel := context.WithTimeout(ctx, c.Timeout)
		l, err := engines.Scrape(sctx, c.HTTPClient, c.MetricsURL, a)
		cancel()
		if err != nil {
			er.Error = err.Error()
			r.Warnings = append(r.Warnings, "engine: "+err.Error())
		} else {
			er.Load = &l
		}
		r.Engine = er
	}
	if c.RayDashboard != "" {
		if r.Engine == nil {
			r.Engine = &EngineReport{Name: rayserve.Name}
		}
		dctx, cancel := context.WithTimeout(ctx, c.Timeout)
		cl, err := rayserve.Discover(dctx, c.HTTPClient, c.RayDashboard)
		cancel()
		if err != nil {
			r.Warnings = append(r.Warnings, "rayserve: "+err.Error())
		} else {
			r.Engine.Ray = &RayServeReport{Cluster: cl, Routes: cl.Routes()}
		}
	}
	add := func(rep telemetry.Report, err error, what string) {
		if err != nil {
			r.Warnings = append(r.Warnings, what+": "+err.Error())
			return
		}
		r.Accelerators = append(r.Accelerators, rep)
	}
	if c.DCGMURL != "" {
		rep, err := p.scrapeTelemetry(ctx, c.DCGMURL, nvidia.ParseDCGM)
		add(rep, err, "dcgm")
	}
	if c.NPUExporterURL != "" {
		rep, err := p.scrapeTelemetry(ctx, c.NPUExporterURL, ascend.ParseExporter)
		add(rep, err, "npu-exporter")
	}
	if !c.NoTools {
		amdDone := false
		for _, tool := range []struct {
			bin string
			run func(context.Context) (telemetry.Report, error)
		}{{"nvidia-smi", nvidia.RunSMI}, {"npu-smi", ascend.RunInfo}, {"amd-smi", amd.RunAMDSMI}, {"rocm-smi", amd.RunSMI}} {
			if _, err := exec.LookPath(tool.bin); err != nil {
				continue
			}
			if tool.bin == "rocm-smi" && amdDone {
				continue // AMD SMI replaces ROCm SMI; one AMD source is enough
			}
			tctx, cancel := context.WithTimeout(ctx, c.Timeout)
			rep, err := tool.run(tctx)
			cancel()
			add(rep, err, tool.bin)
			amdDone = amdDone || (tool.bin == "amd-smi" && err == nil)
		}
	}
	cpuRep, err := p.sampleCPU(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Report{}, fmt.Errorf("probe: %w", ctx.Err())
		}
		r.Warnings = append(r.Warnings, err.Error())
	} else {
		r.CPU = &cpuRep
	}
	finish(&r, c.Capacity)
	return r, nil
}

func (p *Prober) scrapeTelemetry(ctx context.Context, url string, parse func(io.Reader) (telemetry.Report, error)) (telemetry.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return telemetry.Report{}, err
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return telemetry.Report{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return telemetry.Report{}, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return parse(resp.Body)
}

func (p *Prober) sampleCPU(ctx context.Context) (telemetry.Report, error) {
	cur, err := cpu.ReadStat(p.cfg.ProcStat)
	if err != nil {
		return telemetry.Report{}, err
	}
	p.mu.Lock()
	prev := p.lastCPU
	p.mu.Unlock()
	if prev == nil {
		t := time.NewTimer(p.cfg.CPUInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return telemetry.Report{}, ctx.Err()
		case <-t.C:
		}
		first := cur
		prev = &first
		if cur, err = cpu.ReadStat(p.cfg.ProcStat); err != nil {
			return telemetry.Report{}, err
		}
	}
	p.mu.Lock()
	p.lastCPU = &cur
	p.mu.Unlock()
	util, err := cpu.Utilization(*prev, cur)
	if err != nil {
		util = engines.Unknown
	}
	q, err := cpu.ReadCPUMax(p.cfg.CPUMax)
	if err != nil {
		q = cpu.Quota{} // no cgroup v2 quota file: unlimited
	}
	return cpu.Report(cur, q, util), nil
}

// finish computes capacity, utilisation and concurrency.
func finish(r *Report, tab *capacity.Table) {
	if tab == nil {
		tab = capacity.Default()
	}
	if r.Engine != nil && r.Engine.Load != nil {
		r.Concurrency = r.Engine.Load.Running
	}
	// One source per vendor: DCGM and nvidia-smi describe the same cards.
	seen := map[string]bool{}
	var total capacity.Capacity
	have := false
	var usum float64
	var un int
	for _, a := range r.Accelerators {
		if seen[a.Vendor] {
			continue
		}
		seen[a.Vendor] = true
		byModel := map[string]float64{}
		for _, c := range a.Cards {
			byModel[c.Model]++
			if u, ok := c.Utilization.Get(); ok {
				usum += u
				un++
			}
		}
		models := make([]string, 0, len(byModel))
		for m := range byModel {
			models = append(models, m)
		}
		sort.Strings(models)
		for _, m := range models {
			c := tab.ForCards(m, byModel[m])
			if c.Warning != "" {
				r.Warnings = append(r.Warnings, c.Warning)
			}
			if !have {
				total, have = c, true
				continue
			}
			// Mixed cards: sum, and describe the coefficient as the mean.
			total.Value += c.Value
			total.Units += c.Units
			total.Coefficient = total.Value / total.Units
			total.Model += "+" + c.Model
			total.Basis = "mixed cards: sum of cards × coefficient"
			if c.Warning != "" {
				total.Warning = c.Warning
			}
		}
	}
	switch {
	case have:
		r.Capacity = total
		if un > 0 {
			r.Utilization = engines.Known(usum / float64(un))
		}
	case r.CPU != nil:
		r.Capacity = tab.CPU(r.CPU.Count)
		r.Utilization = r.CPU.Utilization
	}
	if r.Accelerators == nil {
		r.Accelerators = []telemetry.Report{}
	}
}
