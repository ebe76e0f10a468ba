package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/switchyard-dev/switchyard/gateway"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
	"github.com/switchyard-dev/switchyard/internal/gcfloor"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", "gateway --config FILE [--check]\n       switchyard gateway --listen ADDR --route MODEL=URL[,URL...] [--route ...]\n       switchyard gateway --listen ADDR --ray-dashboard URL", stdout, stderr)
	configPath := fs.String("config", "", "YAML config file (reloaded on SIGHUP and when it changes)")
	check := fs.Bool("check", false, "validate the configuration (with --config or --route) and exit: 0 when valid, else the error with its YAML line")
	apiKeys := fs.String("api-keys", "", "API-key file (see gateway/tenant): every request then needs one of its keys, as Authorization: Bearer KEY or x-api-key, which names its tenant and limits; overrides auth.api_keys_file")
	adminToken := fs.String("admin-token-file", "", "file holding the admin token: admin actions and pprof need it as a bearer token; overrides admin.token_file")
	pprofOn := fs.Bool("pprof", false, "serve /debug/pprof/ on the admin port (it needs the admin token, so --admin-token-file too); overrides admin.pprof")
	listen := fs.String("listen", "", "client host:port (HTTP/1.1, h2c, gRPC); overrides the config's listen.client")
	admin := fs.String("admin", "", "admin host:port (/healthz, /readyz, /metrics, /admin/*, /debug/pprof/); overrides listen.admin")
	var routes stringList
	fs.Var(&routes, "route", "quick start: serve MODEL from static backends, MODEL=URL[,URL...] (repeatable; MODEL * catches all; https:// and grpcs:// nodes are spoken to over TLS)")
	rayDashboard := fs.String("ray-dashboard", "", "quick start: route every RUNNING Ray Serve application by its route_prefix, reading them from this Ray dashboard, e.g. http://10.0.0.1:8265 (with or without --route)")
	drainDelay := fs.String("drain-delay", "", "on SIGTERM, fail /readyz and keep serving this long before closing the client listener, e.g. 5s (0: none); overrides limits.drain_delay")
	otlp := fs.String("otlp-endpoint", "", "export sampled trace spans over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318; overrides telemetry.otlp_endpoint")
	traceRatio := fs.String("trace-ratio", "", "share of root requests traced, 0..1; overrides telemetry.trace_ratio")
	gcFloor := fs.Int("gc-floor-mib", 64, "keep the Go heap goal at least this many MiB while the live heap is small, so the collector runs less often (at most a quarter of the memory limit; 0: off; ignored when GOGC is set)")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *gcFloor < 0 {
		return fmt.Errorf("--gc-floor-mib %d: want 0 (off) or more: %w", *gcFloor, errUsage)
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	var cfg *gateway.Config
	switch {
	case *configPath != "" && (len(routes) > 0 || *rayDashboard != ""):
		return fmt.Errorf("use --config or --route/--ray-dashboard, not both: %w", errUsage)
	case *configPath != "":
		if cfg, err = gateway.LoadConfig(*configPath); err != nil {
			return err
		}
	case len(routes) > 0 || *rayDashboard != "":
		if cfg, err = gateway.QuickStart(*listen, *admin, routes); err != nil {
			return err
		}
		if *rayDashboard != "" {
			cfg.Ray = &gateway.RayConfig{}
			cfg.Ray.Dashboard = *rayDashboard
		}
	default:
		return fmt.Errorf("give --config FILE, or --route MODEL=URL or --ray-dashboard URL (see switchyard gateway --help): %w", errUsage)
	}
	if *listen != "" {
		cfg.Listen.Client = *listen
	}
	if *admin != "" {
		cfg.Listen.Admin = *admin
	}
	if *otlp != "" {
		cfg.Telemetry.OTLPEndpoint = *otlp
	}
	if *traceRatio != "" {
		r, err := strconv.ParseFloat(*traceRatio, 64)
		if err != nil {
			return fmt.Errorf("--trace-ratio %q: want a number 0..1: %w", *traceRatio, errUsage)
		}
		cfg.Telemetry.TraceRatio = r
	}
	if *adminToken != "" {
		cfg.Admin.TokenFile = *adminToken
	}
	if *pprofOn {
		cfg.Admin.PProf = true
	}
	if *apiKeys != "" {
		cfg.Auth = &tenant.Config{Path: *apiKeys}
	}
	var drain time.Duration
	if *drainDelay != "" {
		if drain, err = time.ParseDuration(*drainDelay); err != nil || drain < 0 {
			return fmt.Errorf("--drain-delay %q: want a duration such as 5s, or 0: %w", *drainDelay, errUsage)
		}
		if drain == 0 {
			drain = -1 // none (a zero limit takes the default)
		}
		cfg.Limits.DrainDelay = drain
	}
	bv := buildInfo()
	opts := []gateway.Option{gateway.WithLogger(log), gateway.WithBuildInfo(bv.Version, bv.Commit)}
	if *check {
		// The same loads as New's below (gateway.Check is New without
		// serving): a file that passes is one the gateway starts with.
		if err := gateway.Check(cfg, opts...); err != nil {
			return configError(*configPath, cfg, err)
		}
		fmt.Fprintf(stdout, "configuration valid: %s\n", plural(len(cfg.Routes), "route"))
		return nil
	}
	g, err := gateway.New(cfg, opts...)
	if err != nil {
		return configError(*configPath, cfg, err)
	}
	defer tuneMemory(*gcFloor, log).Stop()
	cl, err := net.Listen("tcp", cfg.Listen.Client)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	var al net.Listener
	if cfg.Listen.Admin != "" {
		if al, err = net.Listen("tcp", cfg.Listen.Admin); err != nil {
			cl.Close()
			return fmt.Errorf("gateway: admin: %w", err)
		}
	}
	// Reloads are armed before the startup lines: whoever waits for them
	// (gwproc, an operator) may change the file or send SIGHUP at once.
	if *configPath != "" {
		watchConfig(ctx, *configPath, overrides{*listen, *admin, *adminToken, *apiKeys, drain}, g, log.Info, log.Error)
	}
	// bench/gwproc learns the bound ports from these two lines, the
	// admin one first: keep their messages, attribute and order.
	if al != nil {
		log.Info("gateway: admin listening", "addr", al.Addr().String())
	}
	log.Info("gateway: listening", "addr", cl.Addr().String(), "routes", len(cfg.Routes))
	err = g.Serve(ctx, cl, al)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		log.Error("gateway: stopped", "err", err)
		return err
	}
	log.Info("gateway: stopped")
	return nil
}

// tuneMemory sets GOMEMLIMIT to 90 % of the cgroup's memory limit, as
// Prometheus does (unless GOMEMLIMIT is set, or AUTOMEMLIMIT=off), and
// starts the GC floor unless GOGC is set: the operator's settings win.
func tuneMemory(floorMiB int, log *slog.Logger) *gcfloor.Floor {
	limit, err := memlimit.Set()
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
	case err != nil:
		log.Warn("gateway: GOMEMLIMIT not set from the cgroup", "err", err)
	}
	if os.Getenv("GOGC") != "" || floorMiB == 0 {
		return nil
	}
	f := gcfloor.Start(uint64(floorMiB) << 20)
	log.Debug("gateway: GC floor", "floor_mib", floorMiB, "gomemlimit", limit)
	return f
}

// configError gives an error found while building the gateway the YAML
// line of the field it names and the file's name, when the config came
// from a file.
func configError(path string, cfg *gateway.Config, err error) error {
	if path == "" {
		return err
	}
	if located := cfg.AtLine(err); located != err {
		return fmt.Errorf("%s: %w", path, located)
	}
	return err
}

// plural is "1 route", "2 routes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// overrides are the flags that take precedence over the config file, on
// reload too.
type overrides struct {
	listen, admin, adminToken, apiKeys string
	drainDelay                         time.Duration // 0: not set
}

// watchConfig reloads the gateway on SIGHUP and when the file's size or
// modification time changes (polled every 2 s), until ctx ends. An
// invalid file is refused with a message and the running config stays.
// It takes SIGHUP and the file's state before it returns, so a change
// after that is never missed: call it before logging that the gateway
// listens.
func watchConfig(ctx context.Context, path string, o overrides, g *gateway.Gateway, info, errorf func(string, ...any)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	last := configStamp(path)
	go func() {
		defer signal.Stop(hup)
		reloadOnChange(ctx, path, last, hup, o, g, info, errorf)
	}()
}

// configStamp is the file's size and modification time ("" when it
// cannot be read).
func configStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// reloadOnChange is watchConfig's loop; last is the file's stamp when
// watching began.
func reloadOnChange(ctx context.Context, path, last string, hup <-chan os.Signal, o overrides, g *gateway.Gateway, info, errorf func(string, ...any)) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick.C:
			s := configStamp(path)
			if s == last || s == "" {
				continue
			}
			last = s
		}
		cfg, err := gateway.LoadConfig(path)
		if err == nil {
			if o.listen != "" {
				cfg.Listen.Client = o.listen
			}
			if o.admin != "" {
				cfg.Listen.Admin = o.admin
			}
			if o.adminToken != "" {
				cfg.Admin.TokenFile = o.adminToken
			}
			if o.apiKeys != "" {
				cfg.Auth = &tenant.Config{Path: o.apiKeys}
			}
			if o.drainDelay != 0 {
				cfg.Limits.DrainDelay = o.drainDelay
			}
			err = configError(path, cfg, g.Reload(cfg))
		}
		if err != nil {
			errorf("gateway: reload refused, keeping the running config", "err", err)
			continue
		}
		info("gateway: reloaded", "file", path)
	}
}
