package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/discovery"
)

// Gateway is a running data path. Create it with New, run it with Serve,
// swap its configuration with Reload. Safe for concurrent use.
type Gateway struct {
	log    *slog.Logger
	tel    *telemetry
	tp     trace.TracerProvider
	tracer trace.Tracer             // nil when tracing is off
	ownTP  *sdktrace.TracerProvider // built from Telemetry (OTLP export); shut down by Close
	closed sync.Once

	unrouted     *routeStats // answers given before a route was chosen
	streamBodies bool        // Limits.StreamBodyOver > 0, fixed at New

	// Atomic.
	state    atomic.Pointer[state]
	inflight atomic.Int64
	reqSeq   atomic.Uint64
	draining atomic.Bool

	// Immutable after New.
	idPrefix [12]byte // random hex prefix of generated request ids
	h1       *fasthttp.Server
	h2       *http.Server // net/http's HTTP/2 (the bundled x/net/http2) for sniffed h2 connections
	h2ln     *chanListener
	tlsConf  *tls.Config
	listen   ListenConfig

	mu        sync.Mutex // guards the fields below
	runCtx    context.Context
	disc      *discovery.Client
	discCfg   *DiscoveryConfig
	discStop  context.CancelFunc
	discFirst bool
}

// state is one configuration's immutable routing state, swapped whole on
// reload.
type state struct {
	cfg        *Config
	routes     []*route
	byModel    map[string]*route
	ordered    []*route // routes that are not model-only, in config order
	fallback   *route   // the "*" route
	byApp      map[string][]*route
	models     []string // sorted, for 404 answers
	needBody   bool     // some route matches on the model or streams on "stream"
	modelsJSON []byte   // GET /v1/models
	retryAfter []byte
}

// Option is a rare knob of New.
type Option func(*Gateway)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Gateway) { g.log = l } }

// New checks cfg (applying defaults first) and builds a gateway; it does
// not listen. Serve starts it.
func New(cfg *Config, opts ...Option) (*Gateway, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{log: slog.Default(), listen: cfg.Listen}
	for _, o := range opts {
		o(g)
	}
	if err := g.setupTracing(cfg.Telemetry); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = g.Close()
		}
	}()
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	hex.Encode(g.idPrefix[:], rb[:])
	var err error
	if g.tel, err = newTelemetry(g); err != nil {
		return nil, err
	}
	g.unrouted = g.tel.routeStats("")
	if cfg.Listen.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Listen.TLSCert, cfg.Listen.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("gateway: tls: %w", err)
		}
		g.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	lim := cfg.Limits
	g.h1 = &fasthttp.Server{
		Handler:                      g.serveHTTP1,
		ErrorHandler:                 g.serveH1Error,
		Name:                         "switchyard",
		ReadBufferSize:               lim.MaxHeaderBytes,
		WriteBufferSize:              16 << 10,
		ReadTimeout:                  lim.ReadTimeout,
		IdleTimeout:                  lim.IdleTimeout,
		MaxRequestBodySize:           lim.MaxBodyBytes,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       discardLogger{},
	}
	if lim.StreamBodyOver > 0 {
		// fasthttp reads a little ahead and streams the rest; serveHTTP1
		// enforces MaxBodyBytes itself.
		g.h1.StreamRequestBody = true
		g.h1.MaxRequestBodySize = lim.StreamBodyOver
		g.streamBodies = true
	}
	var protos http.Protocols
	protos.SetHTTP2(true)            // TLS connections that negotiated h2
	protos.SetUnencryptedHTTP2(true) // h2c prior knowledge (the sniffer saw the preface)
	g.h2 = &http.Server{
		Handler:           http.HandlerFunc(g.serveH2),
		ReadHeaderTimeout: lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: lim.MaxH2Streams,
			MaxReadFrameSize:     1 << 20,
		},
	}
	st, err := g.newState(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	ok = true
	return g, nil
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
		err = g.shutdownTracing(ctx)
		if g.tel != nil {
			err = errors.Join(err, g.tel.shutdown(ctx))
		}
	})
	return err
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// newState builds the routing state of cfg. A route of old whose config,
// limits, weight period and node source did not change is carried over
// whole (table, endpoints, breakers, pools, owner goroutine); routes with a
// split or shadow are always rebuilt. Route owners start in
// startStateLocked.
func (g *Gateway) newState(cfg *Config, old *state) (*state, error) {
	st := &state{cfg: cfg, byModel: map[string]*route{}, byApp: map[string][]*route{}}
	st.retryAfter = fmt.Appendf(nil, "%d", max(int(cfg.Limits.RetryAfter.Seconds()+0.5), 1))
	var disc Lister
	for i := range cfg.Routes {
		rc := cfg.Routes[i]
		var src Lister
		if len(rc.Nodes) > 0 {
			src = staticLister{rc.App: staticList(&rc)}
		} else {
			if disc == nil {
				disc = g.discoveryFor(cfg.Discovery)
			}
			src = disc
		}
		r := old.reusable(cfg, &rc, src)
		if r == nil {
			var err error
			if r, err = newRoute(rc, &st.cfg.Limits, src, g.tel.routeStats(rc.Name), g.log); err != nil {
				return nil, fmt.Errorf("gateway: route %q: %w", rc.Name, err)
			}
		}
		st.routes = append(st.routes, r)
		st.byApp[rc.App] = append(st.byApp[rc.App], r)
		m := &rc.Match
		switch {
		case len(m.Models) == 1 && m.Models[0] == "*":
			st.fallback = r
			st.needBody = true
		case onlyModels(m):
			for _, mod := range m.Models {
				st.byModel[mod] = r
				st.models = append(st.models, mod)
			}
			st.needBody = true
		default:
			st.ordered = append(st.ordered, r)
			if len(m.Models) > 0 {
				st.needBody = true
				st.models = append(st.models, m.Models...)
			}
		}
		if r.stream == streamAuto {
			st.needBody = true
		}
	}
	slices.Sort(st.models)
	st.models = slices.Compact(st.models)
	if err := g.wireExtras(st); err != nil {
		st.closeExtras()
		return nil, err
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range st.models {
		list.Data = append(list.Data, model{ID: m, Object: "model", OwnedBy: "switchyard"})
	}
	st.modelsJSON, _ = json.Marshal(list)
	return st, nil
}

// reusable returns the route of st that can serve rc unchanged, or nil.
func (st *state) reusable(cfg *Config, rc *RouteConfig, src Lister) *route {
	if st == nil || rc.Split != nil || rc.Shadow != nil || st.cfg.WeightPeriod != cfg.WeightPeriod {
		return nil
	}
	for _, r := range st.routes {
		if r.cfg.Name != rc.Name {
			continue
		}
		if *r.lim != cfg.Limits || !reflect.DeepEqual(r.cfg, *rc) {
			return nil
		}
		if _, static := r.src.(staticLister); !static && r.src != src {
			return nil
		}
		return r
	}
	return nil
}

// discoveryFor returns the discovery client for dc, reusing the running one
// when dc did not change. Called with newState, under g.mu or before Serve.
func (g *Gateway) discoveryFor(dc *DiscoveryConfig) Lister {
	if g.disc != nil && reflect.DeepEqual(g.discCfg, dc) {
		return g.disc
	}
	tok, err := dc.token()
	if err != nil {
		g.log.Error("gateway: discovery token", "err", err)
	}
	c, err := discovery.NewClient(discovery.ClientConfig{
		Servers:  dc.Servers,
		Token:    tok,
		OnUpdate: g.onDiscovery,
		Logger:   g.log,
	})
	if err != nil {
		g.log.Error("gateway: discovery client", "err", err)
		return staticLister{}
	}
	if g.discStop != nil {
		g.discStop()
	}
	g.disc, g.discCfg, g.discStop, g.discFirst = c, dc, nil, true
	return c
}

// onDiscovery hands a new list to the routes of its app; it never blocks.
func (g *Gateway) onDiscovery(app string, _ discovery.OnlineList) {
	if st := g.state.Load(); st != nil {
		for _, r := range st.byApp[app] {
			r.poke()
		}
	}
}

// startState starts the route owners of st and the discovery client.
// Called with g.mu held.
func (g *Gateway) startStateLocked(st *state) {
	for _, r := range st.routes {
		if r.stop == nil {
			ctx, cancel := context.WithCancel(g.runCtx)
			r.stop = cancel
			go r.run(ctx, st.cfg.WeightPeriod, g.log)
		}
	}
	if g.disc != nil {
		for app, rs := range st.byApp {
			if _, ok := rs[0].src.(*discovery.Client); ok {
				g.disc.Watch(app)
			}
		}
		if g.discFirst {
			dctx, dcancel := context.WithCancel(g.runCtx)
			g.discStop = dcancel
			g.discFirst = false
			go func() {
				if err := g.disc.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
					g.log.Error("gateway: discovery stopped", "err", err)
				}
			}()
		}
	}
}

// Reload swaps in a new configuration without dropping connections. An
// invalid config is refused with the reason and the running one stays.
// Listener addresses and server limits (header and body sizes, read
// timeouts) only change on restart.
func (g *Gateway) Reload(cfg *Config) error {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.state.Load()
	st, err := g.newState(cfg, old)
	if err != nil {
		return err
	}
	g.state.Store(st)
	if g.runCtx != nil {
		g.startStateLocked(st)
	}
	kept := make(map[*route]bool, len(st.routes))
	for _, r := range st.routes {
		kept[r] = true
	}
	for _, r := range old.routes {
		if kept[r] {
			continue
		}
		if r.stop != nil {
			r.stop()
		}
		if r.mirror != nil {
			go func() { _ = r.mirror.Close() }()
		}
		r.closeIdle()
	}
	g.log.Info("gateway: config reloaded", "routes", len(cfg.Routes))
	return nil
}

// Serve serves clients on client and the admin API on admin (nil to skip)
// until ctx ends, then stops accepting, finishes in-flight requests within
// Limits.ShutdownTimeout and returns.
func (g *Gateway) Serve(ctx context.Context, client, admin net.Listener) error {
	g.mu.Lock()
	if g.runCtx != nil {
		g.mu.Unlock()
		return errors.New("gateway: Serve called twice")
	}
	runCtx, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	g.runCtx = runCtx
	g.startStateLocked(g.state.Load())
	g.mu.Unlock()

	h1ln := newChanListener(client.Addr())
	g.h2ln = newChanListener(client.Addr())
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := g.h1.Serve(h1ln); err != nil {
			errc <- fmt.Errorf("gateway: http/1.1: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := g.h2.Serve(g.h2ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("gateway: http/2: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		g.acceptLoop(runCtx, client, h1ln)
	}()
	var adminSrv *http.Server
	if admin != nil {
		adminSrv = &http.Server{Handler: g.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := adminSrv.Serve(admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("gateway: admin: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	g.shutdown(client, h1ln, adminSrv)
	stopAll()
	wg.Wait()
	return err
}

// shutdown stops accepting, lets in-flight requests finish (bounded),
// then closes what is left.
func (g *Gateway) shutdown(client net.Listener, h1ln *chanListener, adminSrv *http.Server) {
	g.draining.Store(true)
	timeout := g.state.Load().cfg.Limits.ShutdownTimeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = client.Close()
	h1ln.Close()
	// GOAWAY to HTTP/2 connections; Shutdown returns once they are idle.
	h2done := make(chan struct{})
	go func() {
		_ = g.h2.Shutdown(ctx)
		close(h2done)
	}()
	done := make(chan struct{})
	go func() {
		_ = g.h1.ShutdownWithContext(ctx)
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for g.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			g.log.Warn("gateway: shutdown timeout with requests in flight", "inflight", g.inflight.Load())
			goto out
		case <-tick.C:
		}
	}
out:
	select {
	case <-done:
	case <-ctx.Done():
	}
	select {
	case <-h2done:
	case <-ctx.Done():
		_ = g.h2.Close() // past the bound: cut what is left
	}
	if adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		_ = adminSrv.Shutdown(actx)
		acancel()
	}
	g.mu.Lock()
	st := g.state.Load()
	for _, r := range st.routes {
		if r.stop != nil {
			r.stop()
		}
	}
	st.closeExtras()
	if g.discStop != nil {
		g.discStop()
	}
	g.mu.Unlock()
	if err := g.Close(); err != nil {
		g.log.Warn("gateway: telemetry shutdown", "err", err)
	}
}

// InFlight returns the requests in flight in the gateway.
func (g *Gateway) InFlight() int64 { return g.inflight.Load() }
