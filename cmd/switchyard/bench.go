package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// benchCommands are the subcommands of `switchyard bench`, each in its own
// bench_*.go file.
func benchCommands() []command {
	return []command{
		{"load", "drive load at a loopback target: open loop (Poisson) or closed loop; HTTP, SSE or gRPC", runBenchLoad},
		{"compare", "proxy comparison over HTTP/1.1, HTTP/2 and gRPC: direct, Switchyard, minproxy, epollproxy, nginx, HAProxy, Caddy (make bench-compare)", runBenchCompare},
		{"streams", "gateway memory per open stream: N slow SSE streams through a gateway process (make bench-streams)", runBenchStreams},
		{"policies", "balancing policies in a 10,000-node discrete-event simulation (make bench-policies)", runBenchPolicies},
		{"affinity", "prefix/LoRA affinity and flow control against GIE and llm-d in an LLM fleet simulation (make bench-affinity); --live: through a real gateway with simulated engines, affinity on against off (make bench-affinity-live)", runBenchAffinity},
		{"minproxy", "run the minimal fasthttp reverse proxy used as the comparison's baseline", runBenchMinproxy},
		{"epollproxy", "run the comparison's epoll-loop HTTP/1.1 proxy: what Go costs without goroutines per connection or fasthttp", runBenchEpollproxy},
		{"replot", "redraw the charts of the reports in bench/results from their tables", runBenchReplot},
		{"chaos", "faults and attacks against a whole topology on loopback, with load; a table of what held (make chaos)", runBenchChaos},
	}
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: switchyard bench SUBCOMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Subcommands:")
	for _, c := range benchCommands() {
		printSummary(w, c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `switchyard bench SUBCOMMAND --help` to see its flags.")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		benchUsage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		benchUsage(stdout)
		return nil
	}
	for _, c := range benchCommands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			if err == nil || err == errUsage || errors.Is(err, flag.ErrHelp) {
				return err // errUsage alone: the message is out already
			}
			return &subcommandError{name: c.name, err: err}
		}
	}
	fmt.Fprintf(stderr, "switchyard bench: unknown subcommand %q\n\n", args[0])
	benchUsage(stderr)
	return errUsage
}

// subcommandError is a subcommand's error, printed by run as
// "switchyard COMMAND SUBCOMMAND: message".
type subcommandError struct {
	name string
	err  error
}

func (e *subcommandError) Error() string { return e.name + ": " + e.err.Error() }
func (e *subcommandError) Unwrap() error { return e.err }

// commandLine returns the command as the user typed it, for reports: the
// value of SWITCHYARD_BENCH_CMD when a re-executed child was given it.
func commandLine() string {
	if s := os.Getenv("SWITCHYARD_BENCH_CMD"); s != "" {
		return s
	}
	args := append([]string{os.Args[0]}, os.Args[1:]...)
	for i, a := range args { // as a shell would need it
		if a == "" || strings.ContainsAny(a, " \t\n\"'$`\\|&;()<>*?") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
