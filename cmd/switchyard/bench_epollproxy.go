package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/epollproxy"
)

func runBenchEpollproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench epollproxy", "bench epollproxy --listen ADDR --upstream HOST:PORT[,HOST:PORT...]", stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:8091", "listen address (IPv4)")
	upstream := fs.String("upstream", "", "comma-separated upstream host:port list (IPv4)")
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
	p, err := epollproxy.Listen(*listen, strings.Split(*upstream, ","))
	if err != nil {
		return err
	}
	log.Info("epollproxy: listening", "addr", p.Addr(), "upstreams", *upstream)
	err = p.Serve(ctx)
	log.Info("epollproxy: stopped")
	return err
}
