package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"k8s.io/client-go/dynamic"
	kube "k8s.io/client-go/kubernetes"

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
	log         *slog.Logger
	tp          trace.TracerProvider // WithTracerProvider
	kubeClient  kube.Interface       // WithKubernetesClients
	kubeDynamic dynamic.Interface
	metrics     *telemetry.Metrics
	tracing     *telemetry.Tracing
	core        *forward.Core
	front       *frontend.Server
	closed      sync.Once
	apps        chan struct{}      // buffer 1: the Ray applications changed (followApps)
	endDrain    chan struct{}      // closed by tests to end the drain delay early
	build       []telemetry.Option // WithBuildInfo

	// Atomic.
	srcs  atomic.Pointer[sourceSet] // the node sources in force (sources.go)
	guard atomic.Pointer[admin.Guard]
	feed  feed
	srcWG sync.WaitGroup // the sources' goroutines; Serve waits for them

	mu       sync.Mutex // guards the fields below and the feeders' run state
	runCtx   context.Context
	base     *Config // the configuration as given (without automatic routes)
	closing  bool    // shutdown began: no more routing changes
	keys     *tenant.Store
	keysCfg  tenant.Config
	keysStop context.CancelFunc // stops keys' Run; nil until it runs
}

// Option is a rare knob of New.
type Option func(*Gateway)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Gateway) { g.log = l } }

// WithBuildInfo labels switchyard_build_info with the binary's version
// and commit (what `switchyard version` prints); without it they come
// from Go's build information (telemetry.ReadBuildInfo).
func WithBuildInfo(version, revision string) Option {
	return func(g *Gateway) {
		g.build = []telemetry.Option{telemetry.WithBuildInfo(telemetry.BuildInfo{Version: version, Revision: revision})}
	}
}

// WithTracerProvider makes the gateway trace through tp (which owns the
// sampler and the exporter; the embedder shuts it down). Without it, a
// positive Telemetry.TraceRatio or a Telemetry.OTLPEndpoint builds an SDK
// provider (telemetry.NewTracing).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(g *Gateway) { g.tp = tp }
}

// New checks cfg (applying defaults first) and builds a gateway and its
// node sources; it does not listen or start a source. Serve starts them.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPaths(cfg); err != nil {
		return nil, err
	}
	g := &Gateway{log: slog.Default(), apps: make(chan struct{}, 1), endDrain: make(chan struct{})}
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
	if g.metrics, err = telemetry.NewMetrics(g.build...); err != nil {
		return nil, err
	}
	g.core = forward.New(g.metrics, g.tracing, g.log)
	if err := route.RegisterGauges(g.metrics.Meter(), g.core.Routes); err != nil {
		return nil, err
	}
	if err := g.registerSourceMetrics(); err != nil {
		return nil, err
	}
	if g.front, err = frontend.New(g.core, cfg, g.log); err != nil {
		return nil, err
	}
	guard, err := newGuard(cfg)
	if err != nil {
		return nil, err
	}
	keys, err := g.openKeys(cfg)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	err = g.applyLocked(cfg, true)
	if err == nil {
		g.useKeysLocked(cfg, keys)
	}
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	g.guard.Store(guard)
	ok = true
	return g, nil
}

// openKeys opens the API-key store cfg.Auth names, when it is not the
// one running (nil then, and when keys are off).
func (g *Gateway) openKeys(cfg *Config) (*tenant.Store, error) {
	if cfg.Auth == nil {
		return nil, nil
	}
	want := tenant.Config{Path: cfg.Auth.Path, Interval: cfg.Auth.Interval}
	g.mu.Lock()
	same := g.keys != nil && g.keysCfg.Path == want.Path && g.keysCfg.Interval == want.Interval
	g.mu.Unlock()
	if same {
		return nil, nil
	}
	want.Logger = g.log
	ks, err := tenant.Open(want)
	if err != nil {
		return nil, fmt.Errorf("gateway: auth.api_keys_file: %w", err)
	}
	return ks, nil
}

// useKeysLocked turns API keys on, off or to the store openKeys opened
// as cfg.Auth says; an unchanged Auth keeps the running store (and its
// tenants' state). Called with g.mu held.
func (g *Gateway) useKeysLocked(cfg *Config, ks *tenant.Store) {
	switch {
	case cfg.Auth == nil:
		g.core.SetTenants(nil)
		g.stopKeysLocked()
		g.keys = nil
		return
	case ks == nil: // the running store
		return
	}
	g.stopKeysLocked()
	g.keys, g.keysCfg = ks, tenant.Config{Path: cfg.Auth.Path, Interval: cfg.Auth.Interval}
	g.core.SetTenants(ks)
	if g.runCtx != nil {
		g.runKeysLocked()
	}
}

func (g *Gateway) stopKeysLocked() {
	if g.keysStop != nil {
		g.keysStop()
		g.keysStop = nil
	}
}

// runKeysLocked runs the key store's reloader under Serve (srcWG waits
// for it).
func (g *Gateway) runKeysLocked() {
	if g.keys == nil || g.keysStop != nil {
		return
	}
	ctx, cancel := context.WithCancel(g.runCtx)
	g.keysStop = cancel
	ks := g.keys
	g.srcWG.Add(1)
	go func() {
		defer g.srcWG.Done()
		_ = ks.Run(ctx)
	}()
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

// newGuard reads the admin token and builds the admin port's guard.
func newGuard(cfg *Config) (*admin.Guard, error) {
	tok, err := cfg.Admin.ReadToken()
	if err != nil {
		return nil, err
	}
	return admin.NewGuard(&cfg.Admin, tok, cfg.Listen.Admin), nil
}

// applyLocked makes cfg (defaults applied, validated) the configuration:
// its sources (running ones kept when their block did not change), its
// routes plus the automatic Ray routes (unchanged routes carried over),
// each route subscribed to its source and given the source's current
// list. Routes and sources it replaces are stopped. When nothing but
// the automatic routes could have changed (force false) and they did
// not, it does nothing. Called with g.mu held.
func (g *Gateway) applyLocked(cfg *Config, force bool) error {
	if g.closing {
		return errors.New("gateway: shutting down")
	}
	srcs, fresh, err := g.buildSources(cfg)
	if err != nil {
		return err
	}
	eff, err := g.effective(cfg, srcs)
	if err != nil {
		discard(fresh)
		return err
	}
	old := g.core.Routes()
	if !force && old != nil && reflect.DeepEqual(old.Config().Routes, eff.Routes) {
		discard(fresh) // none: the same configuration keeps its sources
		return nil
	}
	st, err := route.NewSet(eff, old, g.deps())
	if err != nil {
		discard(fresh)
		return err
	}
	var oldSrcs sourceSet
	if p := g.srcs.Load(); p != nil {
		oldSrcs = *p
	}
	g.base = cfg
	g.install(st, srcs)
	retireSourcesLocked(oldSrcs, srcs)
	prev := ""
	if old != nil {
		prev = rayPrefixes(old.Config().Routes)
	}
	if now := rayPrefixes(eff.Routes); now != prev {
		// The routes are installed; each says when its table has ready
		// nodes ("gateway: route has ready nodes"), which may come later:
		// the route's owner builds it from the list it was given.
		g.log.Info("gateway: routes follow the Ray applications", "ray_prefixes", now)
	}
	if old == nil {
		return nil
	}
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
	return nil
}

// rayPrefixes lists the route prefixes of the automatic Ray routes among
// routes, sorted and comma-separated.
func rayPrefixes(routes []config.RouteConfig) string {
	var p []string
	for i := range routes {
		if rc := &routes[i]; isRayRoute(rc) {
			p = append(p, rc.Match.RayPrefix)
		}
	}
	slices.Sort(p)
	return strings.Join(p, ",")
}

// install makes st the routing state and srcs its sources: routes that
// read a source subscribe to their (source, app) and get its current
// list at once; later lists arrive through the source's callback.
// Called with g.mu held (or before Serve).
func (g *Gateway) install(st *route.Set, srcs sourceSet) {
	subs := map[feedKey][]*route.Route{}
	for _, r := range st.Routes() {
		if !r.Static() {
			k := feedKey{r.Config().Source, r.Config().App}
			subs[k] = append(subs[k], r)
		}
	}
	for k := range subs {
		if fd := srcs[k.kind]; fd != nil && fd.watch != nil {
			fd.watch(k.app)
		}
	}
	g.srcs.Store(&srcs)
	g.feed.set(subs, srcs)
	g.core.SetRoutes(st)
	if g.runCtx != nil {
		g.startLocked(st)
	}
}

// startLocked starts the route owners of st and the sources that do not
// run yet. Called with g.mu held, once Serve runs.
func (g *Gateway) startLocked(st *route.Set) {
	for _, r := range st.Routes() {
		r.Start(g.runCtx, st.Config().WeightPeriod, g.log)
	}
	if p := g.srcs.Load(); p != nil {
		g.startSourcesLocked(*p)
	}
	g.runKeysLocked()
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
	if err := checkPaths(cfg); err != nil {
		return err
	}
	guard, err := newGuard(cfg)
	if err != nil {
		return err
	}
	keys, err := g.openKeys(cfg)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.applyLocked(cfg, true); err != nil {
		return err
	}
	g.useKeysLocked(cfg, keys)
	g.guard.Store(guard)
	g.log.Info("gateway: config reloaded", "routes", len(g.core.Routes().Routes()))
	return nil
}

// Serve serves clients on client and the admin API on admin (nil to
// skip), and runs the node sources, until ctx ends. Then it drains:
// /readyz fails at once while requests are still served for
// Limits.DrainDelay (so that load balancers and endpoint controllers
// stop sending new ones), then it stops accepting, finishes in-flight
// requests within Limits.ShutdownTimeout, stops the sources and returns.
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
	g.mu.Unlock()

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		g.core.Run(runCtx) // the watchdog: cancellation and body timeouts
	}()
	go func() {
		defer wg.Done()
		g.followApps(runCtx)
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
		err = g.drain(errc)
	case err = <-errc:
	}
	g.shutdown(client, adminSrv)
	stopAll()
	wg.Wait()
	g.srcWG.Wait()
	return err
}

// drain fails readiness and keeps serving for the drain delay; a server
// that fails meanwhile ends it (its error is returned).
func (g *Gateway) drain(errc <-chan error) error {
	g.core.Drain()
	d := g.core.Routes().Config().Limits.DrainDelay
	if d <= 0 {
		return nil
	}
	g.log.Info("gateway: draining: /readyz fails, still serving", "drain_delay", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.endDrain:
	case err := <-errc:
		return err
	}
	return nil
}

// shutdown stops accepting, lets in-flight requests finish (bounded),
// then stops the routes and sources and closes what is left.
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
	g.closing = true
	st = g.core.Routes()
	for _, r := range st.Routes() {
		r.Stop()
	}
	st.CloseExtras()
	if p := g.srcs.Load(); p != nil {
		for _, fd := range *p {
			if fd.stop != nil {
				fd.stop()
			}
		}
	}
	g.mu.Unlock()
	if err := g.Close(); err != nil {
		g.log.Warn("gateway: telemetry shutdown", "err", err)
	}
}

// InFlight returns the requests in flight in the gateway.
func (g *Gateway) InFlight() int64 { return g.core.InFlight() }
