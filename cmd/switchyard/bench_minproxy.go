package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/minproxy"
)

func runBenchMinproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench minproxy", "bench minproxy --listen ADDR --upstream HOST:PORT[,HOST:PORT...]", stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "listen address")
	upstream := fs.String("upstream", "", "comma-separated upstream host:port list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *upstream == "" {
		fs.Usage()
		return errUsage
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "minproxy listening on %s\n", ln.Addr())
	return minproxy.Serve(ctx, ln, strings.Split(*upstream, ","))
}
