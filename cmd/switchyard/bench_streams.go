package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/streams"
)

func runBenchStreams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench streams", "bench streams [flags]", stdout, stderr)
	var cfg streams.Config
	var levels, out string
	fs.StringVar(&levels, "levels", "1000,3000,5000", "comma-separated stream counts, increasing; streams stay open from one level to the next")
	fs.IntVar(&cfg.Nodes, "nodes", 8, "simulated engines behind the gateway")
	fs.DurationVar(&cfg.TokenInterval, "token-interval", time.Second, "time between two tokens of a stream")
	fs.Float64Var(&cfg.OpenRate, "open-rate", 1000, "streams opened per second")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "wait after every stream of a level has its first token, before sampling memory")
	fs.DurationVar(&cfg.Hold, "hold", 0, "window in which every stream must receive a token (default 3 × token-interval)")
	fs.BoolVar(&cfg.HTTP2, "http2", false, "clients speak h2c (HTTP/2 with prior knowledge), many streams per connection, instead of HTTP/1.1")
	gatewayBin := fs.String("gateway-bin", "", "switchyard binary whose gateway is measured (default: this one)")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "if set, save the gateway's goroutine dump and (after a forced GC, once measured) heap profile at each level here")
	fs.StringVar(&out, "out", "bench/results", "directory for streams.md and streams-memory.png")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-levels %q: %w", levels, errUsage)
		}
		cfg.Levels = append(cfg.Levels, n)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	if *gatewayBin != "" {
		self = *gatewayBin
	}
	cfg.Gateway = []string{self, "gateway"}
	cfg.Log = stderr
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	rep, err := streams.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.Write(out, commandLine()); err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep.Verdict())
	fmt.Fprint(stdout, "\n"+rep.Table())
	fmt.Fprintf(stdout, "\nwrote %s/streams.md\n", out)
	if !rep.OK() {
		return fmt.Errorf("bench streams: not every stream kept receiving tokens")
	}
	return nil
}
