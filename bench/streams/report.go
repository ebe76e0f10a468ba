package streams

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/chart"
	"github.com/switchyard-dev/switchyard/bench/machine"
)

// TargetBytesPerStream is issue 11's target: at most 32 KiB of gateway
// memory per open stream.
const TargetBytesPerStream = 32 << 10

// Table returns the Markdown results table.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| streams | RSS MiB | RSS − idle MiB | bytes per stream | KiB per stream | Go heap in use MiB | goroutine stacks MiB | goroutines | receiving tokens in the hold window | lost | stalled | gateway CPU, cores | other load, cores | time to open |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	cores := func(v float64) string {
		if v < 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", v)
	}
	i := &r.Idle
	fmt.Fprintf(&b, "| idle | %.1f | | | | %.1f | %.1f | %d | | | | | | |\n", mib(i.RSS), mib(i.HeapInuse), mib(i.StackInuse), i.Goroutines)
	for k := range r.Levels {
		l := &r.Levels[k]
		lost := fmt.Sprint(l.Lost)
		if l.Lost > 0 {
			var why []string
			for w, n := range l.LostReasons {
				why = append(why, fmt.Sprintf("%s: %d", w, n))
			}
			slices.Sort(why)
			lost += " (" + strings.Join(why, "; ") + ")"
		}
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.0f | %.1f | %.1f | %.1f | %d | %d of %d (%d tokens in %.1f s) | %s | %d | %s | %s | %.1f s |\n",
			l.Streams, mib(l.RSS), (float64(l.RSS)-float64(i.RSS))/(1<<20), l.BytesPerStream(i), l.BytesPerStream(i)/1024,
			mib(l.HeapInuse), mib(l.StackInuse), l.Goroutines, l.Receiving, l.Streams, l.Tokens, l.Hold.Seconds(),
			lost, l.Stalled(), cores(l.GatewayCPU), cores(l.OtherLoad), l.Open.Seconds())
	}
	return b.String()
}

// Slope returns the memory per added stream between the first and the
// last level, in bytes: (RSS_last − RSS_first) / (N_last − N_first); 0
// with fewer than two levels.
func (r *Report) Slope() float64 {
	if len(r.Levels) < 2 {
		return 0
	}
	a, z := &r.Levels[0], &r.Levels[len(r.Levels)-1]
	return (float64(z.RSS) - float64(a.RSS)) / float64(z.Streams-a.Streams)
}

// Verdict states the target and whether the top level met it.
func (r *Report) Verdict() string {
	if len(r.Levels) == 0 {
		return ""
	}
	top := &r.Levels[len(r.Levels)-1]
	per := top.BytesPerStream(&r.Idle)
	met := "met"
	if per > TargetBytesPerStream {
		met = "not met"
	}
	s := fmt.Sprintf("Target (issue 11): at most %d KiB of gateway memory per open stream. With %d streams: %.1f KiB per stream: %s.", TargetBytesPerStream>>10, top.Streams, per/1024, met)
	if sl := r.Slope(); sl != 0 {
		s += fmt.Sprintf(" Slope from %d to %d streams: %.1f KiB per added stream.", r.Levels[0].Streams, top.Streams, sl/1024)
	}
	if r.OK() {
		s += " Every stream kept receiving tokens at every level."
	} else {
		s += " NOT every stream kept receiving tokens: see the lost and stalled columns."
	}
	return s
}

// Write writes dir/streams.md and dir/streams-memory.png. command is the
// exact command line that produced the report.
func (r *Report) Write(dir, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	mem := chart.BarChart{
		Title:       "Gateway memory with N slow SSE streams open",
		YLabel:      "MiB",
		ValueFormat: "%.0f",
		Series:      []chart.Bars{{Name: "RSS"}, {Name: "Go heap in use"}, {Name: "goroutine stacks"}},
	}
	for _, l := range append([]Level{r.Idle}, r.Levels...) {
		label := "idle"
		if l.Streams > 0 {
			label = fmt.Sprint(l.Streams, " streams")
		}
		mem.Categories = append(mem.Categories, label)
		for i, v := range []float64{mib(l.RSS), mib(l.HeapInuse), mib(l.StackInuse)} {
			mem.Series[i].Values = append(mem.Series[i].Values, v)
		}
	}
	if err := mem.Save(filepath.Join(dir, "streams-memory.png")); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	c := r.Config
	var b strings.Builder
	b.WriteString("# Gateway memory with slow streams\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (took %s).\n\n", command, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(1e9))
	b.WriteString(r.Verdict() + "\n\n")
	b.WriteString(r.Table())
	b.WriteString("\n![memory](streams-memory.png)\n\n")
	b.WriteString("## Setup\n\n")
	fmt.Fprintf(&b, "- Gateway: a real process, `%s` (the quick start: default configuration), started by the harness; its RSS is VmRSS from /proc/PID/status, the median of 5 samples 200 ms apart; Go heap in use, goroutine stacks and goroutines from its admin port (/debug/pprof/heap?debug=1, /debug/pprof/goroutine?debug=1). GOMAXPROCS, GOGC and the GC floor (`--gc-floor-mib`, 64 MiB while the live heap is small) are the gateway's defaults.\n", r.Command)
	fmt.Fprintf(&b, "- Engines: %d simulated engines (engines/sim, vLLM dialect, in the harness process), one token every %v after a 10 ms prefill, any node able to run every stream; each request asks for max_tokens %d, so no stream ends during the run.\n", c.Nodes, c.TokenInterval, maxTokens)
	conns := "HTTP/1.1, one connection per stream"
	if c.HTTP2 {
		conns = "h2c (HTTP/2 with prior knowledge), many streams per connection (the gateway allows 250 per connection by default; the client opens another connection when one is full)"
	}
	fmt.Fprintf(&b, "- Client (in the harness process, Go net/http): POST /v1/chat/completions with `\"stream\": true` over %s, opened at %.0f per second; streams of a level stay open while the next level's are added, all in the same gateway process.\n", conns, c.OpenRate)
	fmt.Fprintf(&b, "- Idle: after one short stream (2 tokens) through the gateway, so what is set up on first use counts as idle. Each level: once every stream has its first token, %v of settling, then the memory samples, then a hold window of %v in which every stream must receive a token (\"receiving\"); \"lost\" streams ended or failed, \"stalled\" ones are open but got no token in the window.\n", c.Settle, c.Hold)
	fmt.Fprintf(&b, "- Go heap in use counts whole spans, live objects and garbage not yet collected alike, and buffers at their full size though only their written pages are resident: it can exceed the RSS growth. RSS is what the issue's target is about.\n")
	fmt.Fprintf(&b, "- bytes per stream = (RSS with N streams − idle RSS) / N. Between levels the streams already open stay, so the slope between levels is the cost of an added stream.\n")
	fmt.Fprintf(&b, "- Sockets: 2 per stream in the gateway (client and upstream side; over HTTP/2 the client side is shared) and 2 in the harness; the harness raised RLIMIT_NOFILE to %d (the gateway inherits it and raises its own soft limit). Loopback ports: the client connects to one gateway port and the gateway to %d engine ports, so N streams use N ephemeral ports per destination side, far below the %s range.\n", r.NoFile, c.Nodes, portRange())
	b.WriteString("- Gateway CPU: its user+system time during the hold window (/proc/PID/stat), in cores. Other load: the CPU other work on the machine used during the hold window, in cores (all CPUs' busy time from /proc/stat less the harness's and the gateway's). The machine may be shared; memory figures are little affected by other load, the time to open and CPU figures more.\n\n")
	b.WriteString("## Machine\n\n")
	b.WriteString(machine.Describe())
	if err := os.WriteFile(filepath.Join(dir, "streams.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	return nil
}

// portRange is the kernel's ephemeral port range, for the report.
func portRange() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return "ephemeral port"
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return "ephemeral port"
	}
	return "ephemeral port " + f[0] + "–" + f[1]
}
