package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"k8s.io/client-go/dynamic"
	kube "k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/kubernetes"
	"github.com/switchyard-dev/switchyard/discovery/ray"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/route"
)

// The gateway's node sources. A route reads its nodes from one source
// (config.RouteConfig.Source): its own static list, or a discovery
// source that runs beside the data path:
//
//	resource    the Resource tier client (discovery.Client, `discovery:`)
//	ray         a Ray dashboard (ray.Source, `ray:`): one app per Serve
//	            application, and automatic routes by route prefix
//	kubernetes  the Kubernetes API (kubernetes.Source, `kubernetes:`)
//
// Lists flow one way: a source hands every new list of an app to its
// OnUpdate, which is feed.offer: the routes reading (source, app) get it
// through route.Route.Offer, never by asking. A route that is installed
// gets the last list its source delivered at once (feed.set); the gateway
// never calls into a source for a list. A source that loses
// its backend keeps its last lists and reports them stale (Stale): the
// admin API shows it per route (/admin/routes "stale") and so does
// switchyard_gateway_route_stale.
//
// The sources of a configuration are built by New and Reload (a reload
// with an unchanged block keeps the running source), run by Serve (each
// in a goroutine of its own under Serve's context, stopped when a reload
// replaces it and on shutdown; Serve waits for them before it returns).

// nodeSource is a discovery source the gateway runs: it delivers every
// new list of an app through the OnUpdate it was built with (which must
// not block), and says whether an app's view may be out of date (Stale:
// its backend is unreachable and it kept the last list). Run runs until
// ctx ends.
type nodeSource interface {
	Run(ctx context.Context) error
	Stale(app string) bool
}

var (
	_ nodeSource = (*discovery.Client)(nil)
	_ nodeSource = (*ray.Source)(nil)
	_ nodeSource = (*kubernetes.Source)(nil)
)

// feeder is one source of one configuration's kind.
type feeder struct {
	// Immutable once built.
	kind  string
	block any // the config block it was built from: an equal block on reload keeps it
	src   nodeSource
	watch func(app string) // subscribes an app (the Resource client); nil otherwise
	ray   *ray.Source      // the Ray source (kind ray), for its applications and status

	// Guarded by feed.mu: the last list of every app the source
	// delivered (empty lists dropped), handed to routes that subscribe
	// later.
	lists map[string]discovery.OnlineList

	// Guarded by Gateway.mu.
	stop context.CancelFunc // nil until started
}

// sourceSet is a configuration's feeders by kind; immutable once built.
type sourceSet map[string]*feeder

// feedKey names the lists a route reads.
type feedKey struct{ kind, app string }

// feed routes the sources' lists to the routes that read them. Its lock
// is a leaf: nothing is called under it but Route.Offer (which takes no
// lock), so a source may deliver while it holds its own locks.
type feed struct {
	mu   sync.Mutex
	subs map[feedKey][]*route.Route // guarded by mu
	srcs sourceSet                  // guarded by mu: the sources in force
}

// offer records a list fd delivered and hands it to the routes reading
// it, unless fd was replaced (a retired source's last poll); it never
// blocks.
func (f *feed) offer(fd *feeder, app string, l discovery.OnlineList) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(l.Nodes) == 0 {
		delete(fd.lists, app)
	} else {
		fd.lists[app] = l
	}
	if f.srcs[fd.kind] != fd {
		return
	}
	for _, r := range f.subs[feedKey{fd.kind, app}] {
		r.Offer(l)
	}
}

// set makes subs the subscriptions and srcs the sources, and gives every
// route the last list its source delivered. Under mu, so that a list
// delivered meanwhile is never overwritten by an older one.
func (f *feed) set(subs map[feedKey][]*route.Route, srcs sourceSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs, f.srcs = subs, srcs
	for k, rs := range subs {
		fd := srcs[k.kind]
		if fd == nil {
			continue
		}
		if l, ok := fd.lists[k.app]; ok {
			for _, r := range rs {
				r.Offer(l)
			}
		}
	}
}

// WithKubernetesClients makes the kubernetes source reach the API server
// through these clients instead of building them from
// kubernetes.kubeconfig or the in-cluster config (an embedder with its
// own clients; tests pass client-go's fakes). dyn may be nil when no app
// reads an InferencePool.
func WithKubernetesClients(client kube.Interface, dyn dynamic.Interface) Option {
	return func(g *Gateway) { g.kubeClient, g.kubeDynamic = client, dyn }
}

// buildSources returns the feeders cfg's routes (and its ray block)
// need: the running ones of the same kind and block are kept, the others
// are built (not started; fresh lists them).
func (g *Gateway) buildSources(cfg *Config) (srcs sourceSet, fresh []*feeder, _ error) {
	var old sourceSet
	if p := g.srcs.Load(); p != nil {
		old = *p
	}
	need := map[string]bool{}
	for i := range cfg.Routes {
		need[cfg.Routes[i].Source] = true
	}
	srcs = sourceSet{}
	fail := func(err error) (sourceSet, []*feeder, error) {
		discard(fresh)
		return nil, nil, err
	}
	add := func(kind string, block any, build func(fd *feeder) error) error {
		if fd := old[kind]; fd != nil && reflect.DeepEqual(fd.block, block) {
			srcs[kind] = fd
			return nil
		}
		fd := &feeder{kind: kind, block: block, lists: map[string]discovery.OnlineList{}}
		if err := build(fd); err != nil {
			return err
		}
		srcs[kind] = fd
		fresh = append(fresh, fd)
		return nil
	}
	if need[config.SourceResource] {
		if err := add(config.SourceResource, *cfg.Discovery, func(fd *feeder) error { return g.resourceSource(fd, cfg.Discovery) }); err != nil {
			return fail(err)
		}
	}
	if cfg.Ray != nil {
		if err := add(config.SourceRay, cfg.Ray.Config, func(fd *feeder) error { return g.raySource(fd, cfg.Ray.Config) }); err != nil {
			return fail(err)
		}
	}
	if need[config.SourceKubernetes] {
		if err := add(config.SourceKubernetes, *cfg.Kubernetes, func(fd *feeder) error { return g.kubernetesSource(fd, *cfg.Kubernetes) }); err != nil {
			return fail(err)
		}
	}
	return srcs, fresh, nil
}

// resourceSource builds fd's Resource tier client from dc.
func (g *Gateway) resourceSource(fd *feeder, dc *DiscoveryConfig) error {
	tok, err := dc.ReadToken()
	if err != nil {
		return err
	}
	cc := discovery.ClientConfig{
		Servers:    dc.Servers,
		Token:      tok,
		CAFile:     dc.CAFile,
		CertFile:   dc.CertFile,
		KeyFile:    dc.KeyFile,
		ServerName: dc.ServerName,
		OnUpdate:   func(app string, l discovery.OnlineList) { g.feed.offer(fd, app, l) },
		Logger:     g.log,
		Meter:      g.metrics.Meter(),
	}
	if dc.TLS && dc.CAFile == "" && dc.CertFile == "" {
		cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: dc.ServerName}
	}
	c, err := discovery.NewClient(cc)
	if err != nil {
		return fmt.Errorf("gateway: discovery: %w", err)
	}
	fd.src, fd.watch = c, c.Watch
	return nil
}

// raySource builds fd's Ray dashboard source from rc.
func (g *Gateway) raySource(fd *feeder, rc ray.Config) error {
	rc.Logger = g.log
	rc.OnUpdate = func(app string, l discovery.OnlineList) { g.feed.offer(fd, app, l) }
	rc.OnApps = func([]ray.Application) { g.appsChanged() }
	s, err := ray.New(rc)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	fd.src, fd.ray = s, s
	return nil
}

// kubernetesSource builds fd's Kubernetes source from kc.
func (g *Gateway) kubernetesSource(fd *feeder, kc kubernetes.Config) error {
	kc.Apps = slices.Clone(kc.Apps) // New fills defaults in: keep the config's intact
	for i := range kc.Apps {
		kc.Apps[i].Namespaces = slices.Clone(kc.Apps[i].Namespaces)
	}
	kc.Logger = g.log
	kc.OnUpdate = func(app string, l discovery.OnlineList) { g.feed.offer(fd, app, l) }
	if g.kubeClient != nil {
		kc.Client, kc.Dynamic = g.kubeClient, g.kubeDynamic
	}
	s, err := kubernetes.New(kc)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	fd.src = s
	return nil
}

// discard drops feeders that never ran. The Resource client registered
// its metrics when it was built: running it with an ended context
// unregisters them.
func discard(fs []*feeder) {
	for _, fd := range fs {
		if c, ok := fd.src.(*discovery.Client); ok {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = c.Run(ctx)
		}
	}
}

// startSourcesLocked starts the feeders of srcs that do not run yet.
// Called with g.mu held, once Serve runs.
func (g *Gateway) startSourcesLocked(srcs sourceSet) {
	for _, fd := range srcs {
		if fd.stop != nil {
			continue
		}
		ctx, cancel := context.WithCancel(g.runCtx)
		fd.stop = cancel
		g.srcWG.Add(1)
		go func() {
			defer g.srcWG.Done()
			if err := fd.src.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("gateway: discovery source stopped", "source", fd.kind, "err", err)
			}
		}()
	}
}

// retireSourcesLocked stops (or discards) the feeders of old that srcs
// does not keep. Called with g.mu held.
func retireSourcesLocked(old, srcs sourceSet) {
	var idle []*feeder
	for kind, fd := range old {
		if srcs[kind] == fd {
			continue
		}
		if fd.stop != nil {
			fd.stop()
		} else {
			idle = append(idle, fd)
		}
	}
	discard(idle)
}

// effective is cfg plus the automatic Ray routes of the applications the
// ray source knows now (defaults applied, validated); cfg itself when
// there are none.
func (g *Gateway) effective(cfg *Config, srcs sourceSet) (*Config, error) {
	fd := srcs[config.SourceRay]
	if fd == nil {
		return cfg, nil
	}
	routed := map[string]string{}
	if st := g.core.Routes(); st != nil {
		for _, r := range st.Routes() {
			if rc := r.Config(); isRayRoute(rc) {
				routed[rc.App] = rc.Match.RayPrefix
			}
		}
	}
	auto := cfg.RayRoutes(fd.ray.Applications(), routed)
	if len(auto) == 0 {
		return cfg, nil
	}
	defaults := Config{Routes: auto}
	defaults.ApplyDefaults()
	eff := *cfg
	eff.Routes = append(slices.Clone(cfg.Routes), defaults.Routes...)
	if err := eff.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: automatic Ray routes: %w", err)
	}
	return &eff, nil
}

// isRayRoute reports whether rc is an automatic route of a Ray
// application (made by effective, not written in the configuration).
func isRayRoute(rc *config.RouteConfig) bool {
	return rc.Source == config.SourceRay && strings.HasPrefix(rc.Name, config.RayRoutePrefix)
}

// appsChanged wakes followApps; it never blocks (the Ray source calls it
// from its poll).
func (g *Gateway) appsChanged() {
	select {
	case g.apps <- struct{}{}:
	default:
	}
}

// followApps rebuilds the routing state when the Ray source's
// applications change (automatic routes appear and go), until ctx ends.
// A burst of changes makes one rebuild.
func (g *Gateway) followApps(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.apps:
		}
		g.mu.Lock()
		if !g.closing {
			if err := g.applyLocked(g.base, false); err != nil {
				g.log.Error("gateway: Ray applications changed but the routes could not follow; keeping the running ones", "err", err)
			}
		}
		g.mu.Unlock()
	}
}

// source names a route's node source for the admin API and says whether
// its view is stale (the source's last refresh failed: the route serves
// its last known list).
func (g *Gateway) source(r *route.Route) (string, bool) {
	rc := r.Config()
	if r.Static() {
		return config.SourceStatic, false
	}
	var fd *feeder
	if p := g.srcs.Load(); p != nil {
		fd = (*p)[rc.Source]
	}
	if fd == nil {
		return rc.Source, true
	}
	return rc.Source, fd.src.Stale(rc.App)
}

// registerSourceMetrics registers the per-route staleness gauge and the
// Ray dashboard's counters, read at scrape time.
func (g *Gateway) registerSourceMetrics() error {
	m := g.metrics.Meter()
	stale, err1 := m.Int64ObservableGauge("switchyard_gateway_route_stale",
		metric.WithDescription("1 while the route's node source may be out of date (its backend is unreachable: the route serves the last list it got), else 0; by route and source."))
	polls, err2 := m.Int64ObservableCounter("switchyard_ray_dashboard_polls_total", metric.WithDescription("Polls of the Ray dashboard's Serve applications."))
	fails, err3 := m.Int64ObservableCounter("switchyard_ray_dashboard_failures_total", metric.WithDescription("Failed polls of the Ray dashboard."))
	age, err4 := m.Float64ObservableGauge("switchyard_ray_dashboard_last_success_age_seconds",
		metric.WithDescription("Seconds since the Ray dashboard last answered (-1: never)."), metric.WithUnit("s"))
	apps, err5 := m.Int64ObservableGauge("switchyard_ray_applications", metric.WithDescription("Serve applications the Ray dashboard lists."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return fmt.Errorf("gateway: metrics: %w", err)
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if st := g.core.Routes(); st != nil {
			for _, r := range st.Routes() {
				kind, isStale := g.source(r)
				var v int64
				if isStale {
					v = 1
				}
				o.ObserveInt64(stale, v, metric.WithAttributes(attribute.String("route", r.Name()), attribute.String("source", kind)))
			}
		}
		if p := g.srcs.Load(); p != nil {
			if fd := (*p)[config.SourceRay]; fd != nil {
				s := fd.ray.Status()
				o.ObserveInt64(polls, int64(s.Polls))
				o.ObserveInt64(fails, int64(s.Failures))
				o.ObserveInt64(apps, int64(s.Apps))
				a := -1.0
				if !s.LastSuccess.IsZero() {
					a = time.Since(s.LastSuccess).Seconds()
				}
				o.ObserveFloat64(age, a)
			}
		}
		return nil
	}, stale, polls, fails, age, apps)
	if err != nil {
		return fmt.Errorf("gateway: metrics callback: %w", err)
	}
	return nil
}
