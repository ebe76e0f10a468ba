package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/compare"
)

func runBenchCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench compare", "bench compare [flags]", stdout, stderr)
	var cfg compare.Config
	var only, out, sections string
	var noInstall, noPin bool
	fs.DurationVar(&cfg.Duration, "duration", 6*time.Second, "measured time per contender per round")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before each measured run")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "interleaved rounds (the report gives medians)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "closed-loop connections")
	fs.IntVar(&cfg.BodyBytes, "body-bytes", 0, "request body size of the HTTP/1.1 and HTTP/2 sections, the chat message padded with words (0: the 79-byte default)")
	fs.IntVar(&cfg.Backends, "backends", 2, "backend servers (HTTP/1.1, and as many gRPC ones)")
	fs.StringVar(&sections, "sections", strings.Join(compare.Sections(), ","), "comma-separated sections: http1 (HTTP/1.1), h2 (h2c clients with h2load, HTTP/1.1 upstreams), grpc (gRPC unary ModelInfer)")
	fs.IntVar(&cfg.H2Conns, "h2-conns", 8, "HTTP/2 section: h2load connections")
	fs.IntVar(&cfg.H2Streams, "h2-streams", 8, "HTTP/2 section: concurrent streams per connection")
	fs.StringVar(&only, "only", "", "comma-separated contenders (default all: "+strings.Join(compare.Names(), ",")+")")
	fs.StringVar(&out, "out", "bench/results", "directory for proxy-compare.md and its charts")
	fs.DurationVar(&cfg.QuietWait, "quiet-wait", 0, "before each contender's turn, wait up to this long for other load on the machine below --quiet-below cores (0: do not wait)")
	fs.Float64Var(&cfg.QuietBelow, "quiet-below", 0.2, "other load, in cores, under which the machine counts as quiet")
	fs.StringVar(&cfg.BaselineBin, "baseline-bin", "", "a second switchyard binary (e.g. built from an older commit), run as contender switchyard-base for an A/B in the same interleaved rounds")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "if set, after the rounds run each section once more while profiling Switchyard's gateway (admin /debug/pprof/profile) and save switchyard-SECTION.cpu.pb.gz here")
	fs.BoolVar(&noInstall, "no-install", false, "do not apt-get missing proxies and h2load (skip them)")
	fs.BoolVar(&noPin, "no-pin", false, "do not pin the harness to CPU 0 (proxies still go to CPU 1)")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	cfg.Install = !noInstall
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	if sections != "" {
		cfg.Sections = strings.Split(sections, ",")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Pin the load generator and backends to CPU 0 by re-running this
	// command under taskset; the proxies go to CPU 1.
	if !noPin && os.Getenv("SWITCHYARD_BENCH_PINNED") == "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			cmd := exec.CommandContext(ctx, ts, append([]string{"-c", "0", self, "bench", "compare"}, args...)...)
			cmd.Env = append(os.Environ(), "SWITCHYARD_BENCH_PINNED=1", "SWITCHYARD_BENCH_CMD="+commandLine())
			cmd.Stdout, cmd.Stderr = stdout, stderr
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 10 * time.Second
			return cmd.Run()
		}
		log.Warn("bench compare: taskset not found: running unpinned")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cfg.Self = self
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	cfg.Log = newLogWriter(log) // progress lines, in the chosen format
	rep, err := compare.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.Write(out, commandLine()); err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Tables())
	fmt.Fprintf(stdout, "\nwrote %s/proxy-compare.md\n", out)
	return nil
}
