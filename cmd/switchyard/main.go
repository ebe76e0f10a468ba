// Command switchyard is the single Switchyard binary: the gateway, the
// Resource service, the node agent, the simulated engine, the demo and the
// benchmark harness, each as a subcommand.
//
// This package only parses flags and wires packages together; it holds no
// logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand. run receives the arguments after the
// subcommand's name and a context cancelled on SIGINT or SIGTERM.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand in the order help prints them. Each
// subcommand lives in its own file.
func commands() []command {
	return []command{
		{"gateway", "serve clients: route each request to a replica of its model", runGateway},
		{"resource", "run a Resource instance: heartbeat ingest and the online list", runResource},
		{"agent", "run the node agent, drain a node, or probe engines and accelerators", runAgent},
		{"sim", "run simulated inference engines", runSim},
		{"demo", "run a Resource, a gateway and a simulated fleet on loopback, and report", runDemo},
		{"bench", "load generator, proxy comparison and policy simulation", runBench},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code:
// 0 on success, 2 on a usage error, 1 on any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "--version", "-version":
		return run(ctx, append([]string{"version"}, args[1:]...), stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run(ctx, append(slices.Clone(args[1:]), "--help"), stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var sub *subcommandError
		if errors.As(err, &sub) {
			name, err = name+" "+sub.name, sub.err
		}
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			if err != errUsage { // a usage error with its own message
				fmt.Fprintf(stderr, "switchyard %s: %s\n", name, unprefixed(name, strings.TrimSuffix(err.Error(), ": "+errUsage.Error())))
			}
			return 2
		default:
			fmt.Fprintf(stderr, "switchyard %s: %s\n", name, unprefixed(name, err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "switchyard: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// unprefixed drops from msg the leading "NAME: " that the command's own
// packages put on their errors ("gateway: tls: ...", "sim: fleet: ..."),
// so that the line names the command once: "switchyard gateway: tls:
// ...", not "switchyard gateway: gateway: tls: ...". For a subcommand
// ("agent drain"), the whole name's prefix or each word's in turn is
// dropped. This is the one rule for every command: packages keep their
// prefixes (other callers need them), the command line does not repeat
// them.
func unprefixed(name, msg string) string {
	msg = strings.TrimPrefix(msg, name+": ") // "agent drain: ..."
	for _, word := range strings.Fields(name) {
		msg = strings.TrimPrefix(msg, word+": ")
	}
	return msg
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Switchyard: a sidecar-free L7 inference gateway.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: switchyard COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		printSummary(w, c.name, c.summary)
	}
	fmt.Fprintln(w, "  help      print this text, or `switchyard help COMMAND` for a command's flags")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `switchyard COMMAND --help` to see every flag of a command, `switchyard --version` for the version.")
}
