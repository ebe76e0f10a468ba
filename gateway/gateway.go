package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/frontend"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// Gateway is a running data path. Create it with New, run it with Serve,
// swap its configuration with Reload. Safe for concurrent use.
type Gateway struct {
	// Immutable after New.
	log     *slog.Logger
	tp      trace.TracerProvider // WithTracerProvider
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	core    *forward.Core
	front   *frontend.Server
	closed  sync.Once

	// Atomic.
	subs  atomic.Pointer[map[string][]*route.Route] // routes fed by the Resource tier, by app
	guard atomic.Pointer[admin.Guard]

	mu       sync.Mutex // guards the fields below
	runCtx   context.Context
	disc     *discovery.Client
	discCfg  *config.DiscoveryConfig
	discStop context.CancelFunc
	discRun  bool // the client's Run started
	keys     *tenant.Store
	keysCfg  tenant.Config
	keysStop context.CancelFunc // stops keys' Run; nil until it runs
}

// Option is a rare knob of New.
type Option func(*Gateway)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Gateway) { g.log = l } }

// WithTracerProvider makes the gateway trace through tp (which owns the
// sampler and the exporter; the embedder shuts it down). Without it, a
// positive Telemetry.TraceRatio or a Telemetry.OTLPEndpoint builds an SDK
// provider (telemetry.NewTracing).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(g *Gateway) { g.tp = tp }
}

// New checks cfg (applying defaults first) and builds a gateway; it does
// not listen. Serve starts it.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{log: slog.Default()}
	for _, o := range opts {
		o(g)
	}
	var err error
	if g.tracing, err = telemetry.NewTracing(cfg.Telemetry, g.tp); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = g.Close()
		}
	}()
	if g.metrics, err = telemetry.NewMetrics(); err != nil {
		return nil, err
	}
	g.core = forward.New(g.metrics, g.tracing, g.log)
	if err := route.RegisterGauges(g.metrics.Meter(), g.core.Routes); err != nil {
		return nil, err
	}
	if g.front, err = frontend.New(g.core, cfg, g.log); err != nil {
		return nil, err
	}
	st, err := route.NewSet(cfg, nil, g.deps())
	if err != nil {
		return nil, err
	}
	if err := g.setGuard(cfg); err != nil {
		return nil, err
	}
	if err := g.setKeys(cfg); err != nil {
		return nil, err
	}
	g.install(st)
	ok = true
	return g, nil
}

func (g *Gateway) deps() route.Deps {
	return route.Deps{Metrics: g.metrics, Log: g.log, Sender: g.core.Sender()}
}

// Close flushes and stops what New started for telemetry (the OTLP span
// exporter, within 5 s, and the metrics provider). Serve calls it when it
// returns; call it yourself only for a gateway that never served. Safe to
// call more than once.
func (g *Gateway) Close() error {
	var err error
	g.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = g.tracing.Shutdown(ctx)
		if g.metrics != nil {
			err = errors.Join(err, g.metrics.Shutdown(ctx))
		}
	})
	return err
}

// setGuard reads the admin token and builds the admin port's guard.
func (g *Gateway) setGuard(cfg *Config) error {
	tok, err := cfg.Admin.ReadToken()
	if err != nil {
		return err
	}
	g.guard.Store(admin.NewGuard(&cfg.Admin, tok, cfg.Listen.Admin))
	return nil
}

// setKeys turns API keys on, off or to another file as cfg.Auth says; an
// unchanged Auth keeps the running store (and its tenants' state). Called
// with g.mu held (or before Serve).
func (g *Gateway) setKeys(cfg *Config) error {
	if cfg.Auth == nil {
		g.core.SetTenants(nil)
		g.stopKeysLocked()
		g.keys = nil
		return nil
	}
	want := tenant.Config{Path: cfg.Auth.Path, Interval: cfg.Auth.Interval}
	if g.keys != nil && g.keysCfg.Path == want.Path && g.keysCfg.Interval == want.Interval {
		return nil
	}
	open := want
	open.Logger = g.log
	ks, err := tenant.Open(open)
	if err != nil {
		return err
	}
	g.stopKeysLocked()
	g.keys, g.keysCfg = ks, want
	g.core.SetTenants(ks)
	if g.runCtx != nil {
		g.runKeysLocked()
	}
	return nil
}

func (g *Gateway) stopKeysLocked() {
	if g.keysStop != nil {
		g.keysStop()
		g.keysStop = nil
	}
}

// runKeysLocked runs the key store's reloader under Serve.
func (g *Gateway) runKeysLocked() {
	if g.keys == nil || g.keysStop != nil {
		return
	}
	ctx, cancel := context.WithCancel(g.runCtx)
	g.keysStop = cancel
	ks := g.keys
	go func() { _ = ks.Run(ctx) }()
}

// install makes st the routing state: routes fed by the Resource tier
// subscribe to their app and get its current list at once; later lists
// arrive through the client's callback. Called with g.mu held (or before
// Serve).
func (g *Gateway) install(st *route.Set) {
	subs := map[string][]*route.Route{}
	for _, r := range st.Routes() {
		if !r.Static() {
			app := r.Config().App
			subs[app] = append(subs[app], r)
		}
	}
	var disc *discovery.Client
	if len(subs) > 0 {
		disc = g.discoveryFor(st.Config().Discovery)
	}
	g.subs.Store(&subs)
	g.core.SetRoutes(st)
	if disc == nil {
		return
	}
	for app, rs := range subs {
		disc.Watch(app)
		if l, ok := disc.List(app); ok {
			for _, r := range rs {
				r.Offer(l)
			}
		}
	}
	if g.runCtx != nil {
		g.startLocked(st)
	}
}

// discoveryFor returns the Resource tier client for dc, reusing the
// running one when dc did not change.
func (g *Gateway) discoveryFor(dc *config.DiscoveryConfig) *discovery.Client {
	if g.disc != nil && reflect.DeepEqual(g.discCfg, dc) {
		return g.disc
	}
	tok, err := dc.ReadToken()
	if err != nil {
		g.log.Error("gateway: discovery token", "err", err)
	}
	c, err := discovery.NewClient(discovery.ClientConfig{
		Servers:  dc.Servers,
		Token:    tok,
		OnUpdate: g.onDiscovery,
		Logger:   g.log,
		// Staleness, last contact, outages and fetch errors on /metrics
		// (unregistered when the client's Run returns).
		Meter: g.metrics.Meter(),
	})
	if err != nil {
		g.log.Error("gateway: discovery client", "err", err)
		return nil
	}
	if g.discStop != nil {
		g.discStop()
	}
	g.disc, g.discCfg, g.discStop, g.discRun = c, dc, nil, false
	return c
}

// onDiscovery hands a new list to the routes of its app; it never blocks.
func (g *Gateway) onDiscovery(app string, list discovery.OnlineList) {
	if subs := g.subs.Load(); subs != nil {
		for _, r := range (*subs)[app] {
			r.Offer(list)
		}
	}
}

// startLocked starts the route owners of st and the discovery client.
// Called with g.mu held, once Serve runs.
func (g *Gateway) startLocked(st *route.Set) {
	for _, r := range st.Routes() {
		r.Start(g.runCtx, st.Config().WeightPeriod, g.log)
	}
	if g.disc != nil && !g.discRun {
		dctx, dcancel := context.WithCancel(g.runCtx)
		g.discStop, g.discRun = dcancel, true
		disc := g.disc
		go func() {
			if err := disc.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("gateway: discovery stopped", "err", err)
			}
		}()
	}
}

// Reload swaps in a new configuration without dropping connections. An
// invalid config is refused with the reason and the running one stays.
// Listener addresses and server limits (header and body sizes, read
// timeouts) only change on restart. Mirrors of replaced routes are closed
// (their queued copies sent or cancelled, their logs flushed) before
// Reload returns.
func (g *Gateway) Reload(cfg *Config) error {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.core.Routes()
	st, err := route.NewSet(cfg, old, g.deps())
	if err != nil {
		return err
	}
	if err := g.setGuard(cfg); err != nil {
		st.CloseExtras()
		return err
	}
	if err := g.setKeys(cfg); err != nil {
		st.CloseExtras()
		return err
	}
	g.install(st)
	kept := make(map[*route.Route]bool, len(st.Routes()))
	for _, r := range st.Routes() {
		kept[r] = true
	}
	for _, r := range old.Routes() {
		if !kept[r] {
			r.Stop()
			r.CloseIdle()
		}
	}
	old.CloseExtras()
	g.log.Info("gateway: config reloaded", "routes", len(cfg.Routes))
	return nil
}

// Serve serves clients on client and the admin API on admin (nil to skip)
// until ctx ends, then stops accepting, finishes in-flight requests within
// Limits.ShutdownTimeout and returns.
func (g *Gateway) Serve(ctx context.Context, client, adminLn net.Listener) error {
	g.mu.Lock()
	if g.runCtx != nil {
		g.mu.Unlock()
		return errors.New("gateway: Serve called twice")
	}
	runCtx, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	g.runCtx = runCtx
	g.startLocked(g.core.Routes())
	g.runKeysLocked()
	g.mu.Unlock()

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		g.core.Run(runCtx) // the watchdog: cancellation and body timeouts
	}()
	go func() {
		defer wg.Done()
		if err := g.front.Serve(runCtx, client); err != nil {
			errc <- err
		}
	}()
	var adminSrv *http.Server
	if adminLn != nil {
		weights := admin.NewWeightHistory(g.core.Routes)
		adminSrv = &http.Server{Handler: admin.Handler(admin.Deps{
			Core: g.core, Metrics: g.metrics.Handler(), Source: g.source, Guard: g.guard.Load, Log: g.log,
			Weights: weights, Tenants: g.core.Tenants,
		}), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			weights.Run(runCtx) // the admin page's weight history
		}()
		go func() {
			defer wg.Done()
			if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("gateway: admin: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	g.shutdown(client, adminSrv)
	stopAll()
	wg.Wait()
	return err
}

// source names a route's node source for the admin API.
func (g *Gateway) source(r *route.Route) (string, bool) {
	if r.Static() {
		return "static", false
	}
	g.mu.Lock()
	c := g.disc
	g.mu.Unlock()
	if c == nil {
		return "discovery", true
	}
	return "discovery", c.Stale(r.Config().App)
}

// shutdown stops accepting, lets in-flight requests finish (bounded),
// then closes what is left.
func (g *Gateway) shutdown(client net.Listener, adminSrv *http.Server) {
	g.core.Drain()
	st := g.core.Routes()
	ctx, cancel := context.WithTimeout(context.Background(), st.Config().Limits.ShutdownTimeout)
	defer cancel()
	g.front.Shutdown(ctx, client)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for g.core.InFlight() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	if n := g.core.InFlight(); n > 0 {
		g.log.Warn("gateway: shutdown timeout with requests in flight", "inflight", n)
	}
	if adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		_ = adminSrv.Shutdown(actx)
		acancel()
	}
	g.mu.Lock()
	st = g.core.Routes()
	for _, r := range st.Routes() {
		r.Stop()
	}
	st.CloseExtras()
	if g.discStop != nil {
		g.discStop()
	}
	g.mu.Unlock()
	if err := g.Close(); err != nil {
		g.log.Warn("gateway: telemetry shutdown", "err", err)
	}
}

// InFlight returns the requests in flight in the gateway.
func (g *Gateway) InFlight() int64 { return g.core.InFlight() }
