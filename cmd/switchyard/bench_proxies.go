package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/switchyard-dev/switchyard/bench/epollproxy"
	"github.com/switchyard-dev/switchyard/bench/minproxy"
)

// The comparison's own proxies: each listens on --listen and forwards to
// the --upstream list until the command is stopped.

func runBenchMinproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runBenchProxy(ctx, args, stdout, stderr, "minproxy", "127.0.0.1:8090", func(ctx context.Context, listen string, ups []string, ready func(addr string)) error {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		ready(ln.Addr().String())
		return minproxy.Serve(ctx, ln, ups)
	})
}

func runBenchEpollproxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runBenchProxy(ctx, args, stdout, stderr, "epollproxy", "127.0.0.1:8091", func(ctx context.Context, listen string, ups []string, ready func(addr string)) error {
		p, err := epollproxy.Listen(listen, ups)
		if err != nil {
			return err
		}
		ready(p.Addr())
		return p.Serve(ctx)
	})
}

// runBenchProxy parses the flags the proxies share and runs serve, which
// calls ready once it listens.
func runBenchProxy(ctx context.Context, args []string, stdout, stderr io.Writer, name, listenDefault string,
	serve func(ctx context.Context, listen string, upstreams []string, ready func(addr string)) error) error {
	fs := newFlagSet("bench "+name, "bench "+name+" --listen ADDR --upstream HOST:PORT[,HOST:PORT...]", stdout, stderr)
	listen := fs.String("listen", listenDefault, "listen address")
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
	started := false
	err = serve(ctx, *listen, strings.Split(*upstream, ","), func(addr string) {
		started = true
		log.Info(name+": listening", "addr", addr, "upstreams", *upstream)
	})
	if started {
		log.Info(name + ": stopped")
	}
	return err
}
