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
	fs := newFlagSet("bench minproxy", "bench minproxy --listen ADDR --upstream HOST:PORT[,HOST:PORT...]", stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "listen address")
	upstream := fs.String("upstream", "", "comma-separated upstream host:port list")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("--upstream is required: %w", errUsage)
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("minproxy: listening", "addr", ln.Addr().String(), "upstreams", *upstream)
	err = minproxy.Serve(ctx, ln, strings.Split(*upstream, ","))
	log.Info("minproxy: stopped")
	return err
}
