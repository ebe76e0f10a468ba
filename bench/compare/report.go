package compare

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/machine"
)

// Table returns the Markdown results table. Figures are medians over
// the rounds; ratios are of median req/s.
func (r *Report) Table() string {
	var b strings.Builder
	nginx, direct := r.Row("nginx"), r.Row("direct")
	ratio := func(row, ref *Row) string {
		if ref == nil || ref.Skipped != "" || ref.MedianRPS() == 0 || row.Skipped != "" {
			return "–"
		}
		return fmt.Sprintf("%.2f×", row.MedianRPS()/ref.MedianRPS())
	}
	b.WriteString("| contender | req/s (median) | req/s per round | p50 ms (median) | p99 ms (median) | p99 ms (all rounds) | errors | CPU µs/req (median) | other load, cores (max) | req/s vs nginx | req/s vs direct |\n")
	b.WriteString("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s | | | | | | | | | |\n", row.Name, strings.ReplaceAll(strings.ReplaceAll(row.Skipped, "|", "/"), "\n", " "))
			continue
		}
		per := make([]string, len(row.RPS))
		for i, v := range row.RPS {
			per[i] = fmt.Sprintf("%.0f", v)
		}
		cpu := "–"
		if len(row.CPUPerReq) > 0 {
			cpu = fmt.Sprintf("%.2f", row.MedianCPUPerReq())
		}
		other := "–"
		if len(row.OtherLoad) > 0 {
			other = fmt.Sprintf("%.2f", slices.Max(row.OtherLoad))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.3f | %.3f | %.3f | %d | %s | %s | %s | %s |\n", row.Name, row.MedianRPS(), strings.Join(per, " / "),
			row.MedianP50(), row.MedianP99(), float64(row.Latency.Quantile(0.99))/1e6, row.Errors, cpu, other, ratio(row, nginx), ratio(row, direct))
	}
	return b.String()
}

// Paired returns, when the run had a baseline binary, the A/B figures
// taken round by round (switchyard and switchyard-base run back to back in
// each round, so a machine that changes speed between rounds affects both
// alike): the median over rounds of the per-round ratios, and the best
// round of each. "" without a baseline.
func (r *Report) Paired() string {
	a, base := r.Row("switchyard"), r.Row(baseName)
	if a == nil || base == nil || a.Skipped != "" || base.Skipped != "" {
		return ""
	}
	ratios := func(x, y []float64) []float64 {
		var out []float64
		for i := range min(len(x), len(y)) {
			if y[i] > 0 {
				out = append(out, x[i]/y[i])
			}
		}
		return out
	}
	var b strings.Builder
	b.WriteString("\nA/B, round by round (switchyard ÷ switchyard-base):\n\n")
	if rr := ratios(a.RPS, base.RPS); len(rr) > 0 {
		fmt.Fprintf(&b, "- req/s: median ratio %.3f (per round %s); best round %.0f vs %.0f\n", median(rr), joinf(rr, "%.3f"), slices.Max(a.RPS), slices.Max(base.RPS))
	}
	if cr := ratios(a.CPUPerReq, base.CPUPerReq); len(cr) > 0 {
		fmt.Fprintf(&b, "- CPU µs/req: median ratio %.3f (per round %s); best round %.2f vs %.2f\n", median(cr), joinf(cr, "%.3f"), slices.Min(a.CPUPerReq), slices.Min(base.CPUPerReq))
	}
	return b.String()
}

func joinf(v []float64, format string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, " / ")
}

// Write writes dir/proxy-compare.md and its plots. command is the exact
// command line that produced the report.
func (r *Report) Write(dir, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	var rows []ChartRow
	for _, row := range r.Rows {
		if row.Skipped == "" {
			rows = append(rows, ChartRow{Name: row.Name, RPS: row.MedianRPS(), P50: row.MedianP50(), P99: row.MedianP99()})
		}
	}
	if err := WriteCharts(dir, "proxy-compare", rows); err != nil {
		return err
	}
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "# Proxy comparison\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (took %s).\n\n", command, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(1e9))
	b.WriteString(r.Table())
	b.WriteString(r.Paired())
	fmt.Fprintf(&b, "\n![req/s](proxy-compare-rps.png)\n\n![latency](proxy-compare-latency.png)\n\n")
	fmt.Fprintf(&b, "## Setup\n\n")
	fmt.Fprintf(&b, "- Workload: closed loop, %d connections, POST /v1/chat/completions with a %d-byte JSON body; each backend answers a fixed %d-byte JSON completion at once (bench/compare/backend.go), so the numbers measure proxy overhead.\n", c.Concurrency, len(Request), len(Reply))
	fmt.Fprintf(&b, "- %d backends (fasthttp, in the harness process); the load generator (bench/loadgen, fasthttp client) and the backends run pinned to CPU 0; every proxy runs under `taskset -c %d` with one worker: nginx `worker_processes 1`, HAProxy `nbthread 1`, GOMAXPROCS=1 for Switchyard, minproxy and Caddy. Proxies round-robin over the backends with kept-alive upstream connections.\n", c.Backends, c.ProxyCPU)
	fmt.Fprintf(&b, "- Each contender: %s warm-up, then %s measured; %d rounds, interleaved (every contender once per round). The table gives medians over rounds (req/s, and each round's p50/p99), because the machine is shared and one disturbed round would skew a mean; \"p99 (all rounds)\" merges every round's histogram (bench/hist, ≤0.8 %% bucket error) and so includes the disturbed rounds. \"direct\" is the load generator straight to one backend, no proxy.\n", c.Warmup, c.Duration, c.Rounds)
	fmt.Fprintf(&b, "- The load generator shares CPU 0 with the backends, so \"direct\" is bounded by CPU 0 and the proxies by CPU 1; ratios below 1 vs direct are the cost of the extra hop on its own core.\n")
	fmt.Fprintf(&b, "- CPU µs/req: the proxy's CPU time (user + system of every process in its process group, from /proc/PID/stat, 10 ms ticks) during each measured run, divided by the requests answered; the median over rounds. A proxy that does not saturate its core shows it here rather than in req/s, so this is the fairer efficiency figure. Kernel time of the loopback TCP stack is included (it is charged to whichever process sends).\n")
	fmt.Fprintf(&b, "- Other load: the CPU that other work on the machine used during each measured run, in cores: all CPUs' user+system+irq+softirq+steal time from /proc/stat less this harness's and the contenders' own user+system time (which includes the softirq work done in their system calls); the column gives the worst round. Above ~0.2 the round competed with other work and its figures are less reliable.")
	if c.QuietWait > 0 {
		fmt.Fprintf(&b, " Each contender's turn first waited (up to %v) for other load below %.2f cores over one second.", c.QuietWait, c.QuietBelow)
	}
	b.WriteString("\n")
	if c.BaselineBin != "" {
		fmt.Fprintf(&b, "- switchyard-base: the same gateway command run from a second binary (`%s`), measured right after switchyard in every round (A/B).\n", c.BaselineBin)
	}
	b.WriteString("\n")
	b.WriteString("- Commands (under `taskset -c 1`, GOMAXPROCS=1): `switchyard gateway --listen ADDR --route bench=http://B1,http://B2` (the gateway's quick start, default configuration); `switchyard bench minproxy --listen ADDR --upstream B1,B2`; `nginx -p DIR/ -c DIR/nginx.conf`; `haproxy -f DIR/haproxy.cfg -db`; `caddy run --config DIR/Caddyfile --adapter caddyfile`.\n\n")
	b.WriteString("Versions:\n\n")
	for _, row := range r.Rows {
		if row.Version != "" {
			fmt.Fprintf(&b, "- %s: %s\n", row.Name, row.Version)
		}
	}
	b.WriteString("\nConfigurations (as written by the harness; {{.Listen}} and {{.Backends}} are filled in per run):\n\n")
	for _, x := range []struct{ name, text string }{{"nginx.conf", NginxConf}, {"haproxy.cfg", HAProxyConf}, {"Caddyfile", CaddyConf}} {
		fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n```\n%s```\n</details>\n\n", x.name, x.text)
	}
	b.WriteString("## Machine\n\n")
	b.WriteString(machine.Describe())
	return writeFile(filepath.Join(dir, "proxy-compare.md"), b.String())
}

func writeFile(p, s string) error {
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	return nil
}
