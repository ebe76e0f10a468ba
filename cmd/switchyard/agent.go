package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/engines/probe"
)

const defaultControl = "127.0.0.1:7190"

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "probe":
			return agentSubcommand("probe", runAgentProbe(ctx, args[1:], stdout, stderr))
		case "drain", "undrain", "status":
			return agentSubcommand(args[0], runAgentControl(ctx, args[0], args[1:], stdout, stderr))
		case "run":
			args = args[1:]
		}
	}
	return runAgentRun(ctx, args, stdout, stderr)
}

// agentSubcommand names the subcommand in err's line ("switchyard agent
// probe: ..."), as bench does; a usage error already printed and help
// pass as they are.
func agentSubcommand(name string, err error) error {
	if err == nil || err == errUsage || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &subcommandError{name: name, err: err}
}

// addrFlags collects repeated --addr proto=host:port flags.
type addrFlags map[string]string

func (a addrFlags) String() string {
	var parts []string
	for proto, hp := range a {
		parts = append(parts, proto+"="+hp)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
func (a addrFlags) Set(v string) error {
	proto, hp, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want proto=host:port, got %q", v)
	}
	a[proto] = hp
	return nil
}

func runAgentRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent", "agent [run] --app NAME --addr PROTO=HOST:PORT [flags]\n       switchyard agent drain|undrain|status [--control HOST:PORT]\n       switchyard agent probe [flags]\n\nRuns the node agent (the default), talks to a running one (drain, undrain,\nstatus), or prints what it would report (probe).", stdout, stderr)
	servers := fs.String("servers", "127.0.0.1:7100", "comma-separated Resource instances (host:port), in failover order")
	token := secretFileVar(fs, "token", "SWITCHYARD_TOKEN", "bearer token: an agent credential bound to this node's app (or the tier's shared quick-start token)")
	id := fs.String("id", "", "node id, unique within the app (default: this host's name)")
	app := fs.String("app", "", "application (model service) the node serves")
	addrs := addrFlags{}
	fs.Var(addrs, "addr", "engine address as `proto=host:port` (repeatable), e.g. http=10.0.0.5:8000")
	engine := fs.String("engine", "", "inference engine name (vllm, triton, ...)")
	model := fs.String("accel-model", "", "accelerator model")
	cards := fs.Int("accel-count", 0, "accelerator cards")
	capacity := fs.Float64("capacity", 1, "relative capacity")
	loadKind := fs.String("load", "static", "load source: static (the --util and --concurrency values) or probe (engine metrics and accelerator telemetry)")
	util := fs.Float64("util", 0, "static utilisation 0..1 (not set: sent as unknown)")
	conc := fs.Float64("concurrency", 0, "static concurrency (not set: sent as unknown)")
	metricsURL := fs.String("metrics-url", "", "engine metrics URL for --load probe (mindie default: https://127.0.0.2:1027/metrics, its management address)")
	engineURL := fs.String("engine-url", "", "with --load probe, the engine's base URL for its live and ready probes (default http:// plus the --addr http address; mindie: https://127.0.0.2:1026, its management port; \"none\" sends readiness as unknown)")
	engineCA := fs.String("engine-ca", "", "trust the PEM CA bundle in `FILE` for the engine's HTTPS probes and metrics (e.g. MindIE's self-signed certificate; default: the system's roots)")
	utilFrom := fs.String("util-from", "accelerators", "with --load probe, what utilisation means: accelerators (mean card utilisation, else CPU) or kv-cache (the engine's KV-cache usage)")
	period := fs.Duration("period", time.Second, "heartbeat period")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "how long a drain (also on SIGTERM) waits for gateways to acknowledge")
	control := fs.String("control", defaultControl, "loopback host:port of the control API that agent drain, undrain and status use (empty disables)")
	tlsFlags := addTLSFlags(fs, "dial")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("at least one --addr proto=host:port is required: %w", errUsage)
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	if *id == "" {
		if *id, err = os.Hostname(); err != nil {
			return fmt.Errorf("--id not given and no host name: %w", err)
		}
	}
	_, cliTLS, err := tlsFlags.configs()
	if err != nil {
		return err
	}
	tok, err := token.Resolve()
	if err != nil {
		return err
	}
	cfg := agent.Config{
		Servers: strings.Split(*servers, ","), Token: tok, TLS: cliTLS,
		NodeID: *id, App: *app, Addresses: addrs, Engine: *engine,
		Accelerator: discovery.Accelerator{Model: *model, Count: *cards}, Capacity: *capacity,
		Period: *period, DrainTimeout: *drainTimeout, Logger: log,
	}
	// The load source: a static one, or the engines probe. Any other
	// implementation of agent.LoadSource plugs in here.
	switch *loadKind {
	case "static":
		static := agent.StaticLoad{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "util":
				static.Utilisation = discovery.Known(*util)
			case "concurrency":
				static.Concurrency = discovery.Known(*conc)
			}
		})
		cfg.Load = static
	case "probe":
		base, murl := *engineURL, *metricsURL
		if *engine != "" {
			defBase, defMetrics, err := agent.EngineURLs(*engine, addrs["http"])
			if err != nil {
				return err
			}
			if base == "" {
				base = defBase
			}
			if murl == "" {
				murl = defMetrics
			}
		}
		scrape, ready, err := engineClients(*engineCA)
		if err != nil {
			return err
		}
		p, err := probe.New(probe.Config{Engine: *engine, MetricsURL: murl, HTTPClient: scrape})
		if err != nil {
			return err
		}
		src := agent.ProbeSource{Prober: p, Anomalies: agent.NewAnomalyLog(log)}
		if base != "none" && base != "" && *engine != "" {
			if src.Ready, err = agent.EngineReadiness(*engine, base, ready); err != nil {
				return err
			}
		}
		log.Info("agent: probing the engine", "engine", *engine, "metrics", murl, "health", base)
		switch *utilFrom {
		case "accelerators":
		case "kv-cache":
			src.UtilFromKVCache = true
		default:
			return fmt.Errorf("--util-from %q: want accelerators or kv-cache: %w", *utilFrom, errUsage)
		}
		cfg.Load = src
	default:
		return fmt.Errorf("--load %q: want static or probe: %w", *loadKind, errUsage)
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	// The agent runs on its own context: SIGTERM (ctx) drains first, then
	// stops it, which sends the final offline heartbeat.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()

	if *control != "" {
		ln, err := listenLoopback(*control)
		if err != nil {
			stopRun()
			<-runErr
			return err
		}
		hs := &http.Server{Handler: agent.ControlHandler(a), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		log.Info("agent: control API listening", "addr", ln.Addr().String())
	}
	log.Info("agent: started", "id", *id, "app", *app, "servers", *servers, "load", *loadKind)
	select {
	case err := <-runErr:
		if err != nil {
			log.Error("agent: stopped", "err", err)
		}
		return err
	case <-ctx.Done():
	}
	log.Info("agent: signal: draining before exit")
	st, err := a.Drain(context.Background())
	if err != nil {
		log.Warn("agent: drain incomplete", "err", err, "status", st)
	} else {
		log.Info("agent: drained: every watching gateway acknowledged")
	}
	stopRun()
	<-runErr
	log.Info("agent: stopped")
	return nil
}

// engineClients returns the HTTP clients for the engine's metrics and its
// readiness probe (no keep-alives: each probe dials afresh), trusting the
// PEM bundle caFile for HTTPS; nil, nil without caFile (the defaults,
// which trust the system's roots).
func engineClients(caFile string) (scrape, ready *http.Client, err error) {
	if caFile == "" {
		return nil, nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--engine-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("--engine-ca: no PEM certificate in %s", caFile)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	const timeout = 10 * time.Second // backstop; every probe has its own deadline
	scrape = &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
	ready = &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tc.Clone(), DisableKeepAlives: true}}
	return scrape, ready, nil
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("control: %s is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

// runAgentControl talks to a running agent's control API.
func runAgentControl(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent "+verb, "agent "+verb+" [flags]", stdout, stderr)
	control := fs.String("control", defaultControl, "the running agent's control host:port")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	method, path := http.MethodPost, "/"+verb
	if verb == "status" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+*control+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", verb, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("agent %s: %w", verb, err)
	}
	if len(body) > 0 {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") == nil {
			body = out.Bytes()
		}
		fmt.Fprintf(stdout, "%s\n", body)
	}
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGatewayTimeout:
		return fmt.Errorf("agent %s: %w", verb, agent.ErrDrainTimeout)
	default:
		return fmt.Errorf("agent %s: %s", verb, resp.Status)
	}
}
