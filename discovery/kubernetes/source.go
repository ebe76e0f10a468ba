package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	kube "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/scrape"
)

// Source keeps the online lists of the apps in its Config from the
// Kubernetes API. Create it with [New] and start it with Run. It is safe
// for concurrent use and must not be copied.
type Source struct {
	cfg     Config // immutable
	client  kube.Interface
	dynamic dynamic.Interface
	epoch   uint64
	apps    map[string]*app   // immutable after New
	order   []*app            // apps in config order
	feeds   map[feedKey]*feed // immutable after New
	scraper *scrape.Scraper   // nil when no app names an engine

	trigger chan struct{} // buffer 1: something is dirty

	mu         sync.Mutex
	dirty      map[*app]bool            // guarded by mu: membership or state may have changed
	loadDirty  map[*app]bool            // guarded by mu: only scrape results changed
	targetApps map[scrape.Target][]*app // guarded by mu: who reads each target
	started    bool                     // guarded by mu
}

// app is one application's configuration, feeds and published list.
type app struct {
	cfg      AppConfig          // immutable
	selector labels.Selector    // immutable; Selector parsed (nil when none)
	feeds    []*feed            // immutable after New: slices, pods or pools per namespace
	byNS     map[string]nsFeeds // immutable after New

	mu      sync.Mutex
	have    bool                       // guarded by mu: a list was published
	list    discovery.OnlineList       // guarded by mu
	nodes   map[string]*discovery.Node // guarded by mu: list.Nodes by ID
	targets []scrape.Target            // guarded by mu: scraped endpoints of list
	problem error                      // guarded by mu: why the last rebuild failed
	warned  map[string]bool            // publisher goroutine only: endpoint problems logged
}

// nsFeeds are an app's feeds in one namespace.
type nsFeeds struct {
	slices, pods, pools *feed
}

// New checks cfg, builds the API clients (unless given) and the
// informers, and returns a Source; nothing runs until Run.
func New(cfg Config) (*Source, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Source{
		cfg:        cfg,
		client:     cfg.Client,
		dynamic:    cfg.Dynamic,
		epoch:      uint64(time.Now().UnixNano()),
		apps:       make(map[string]*app, len(cfg.Apps)),
		feeds:      make(map[feedKey]*feed),
		trigger:    make(chan struct{}, 1),
		dirty:      make(map[*app]bool),
		loadDirty:  make(map[*app]bool),
		targetApps: make(map[scrape.Target][]*app),
	}
	needDynamic, needScrape := false, false
	for _, ac := range cfg.Apps {
		needDynamic = needDynamic || ac.InferencePool != ""
		needScrape = needScrape || ac.Engine != ""
	}
	if s.client == nil || (needDynamic && s.dynamic == nil) {
		rc, err := restConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		if s.client == nil {
			if s.client, err = kube.NewForConfig(rc); err != nil {
				return nil, fmt.Errorf("kubernetes: client: %w", err)
			}
		}
		if needDynamic && s.dynamic == nil {
			if s.dynamic, err = dynamic.NewForConfig(rc); err != nil {
				return nil, fmt.Errorf("kubernetes: dynamic client: %w", err)
			}
		}
	}
	if needScrape {
		sc := cfg.Scrape
		sc.OnResult = s.scraped
		var err error
		if s.scraper, err = scrape.New(sc); err != nil {
			return nil, fmt.Errorf("kubernetes.%w", err)
		}
	}
	for _, ac := range cfg.Apps {
		a := &app{cfg: ac, byNS: make(map[string]nsFeeds), warned: make(map[string]bool)}
		if ac.Selector != "" {
			a.selector, _ = labels.Parse(ac.Selector) // checked by Validate
		}
		for _, ns := range ac.Namespaces {
			var nf nsFeeds
			switch ac.kind() {
			case kindService:
				nf.slices = s.feedFor(feedKey{kind: feedSlices, namespace: ns, labels: discoveryv1.LabelServiceName + "=" + ac.Service}, a)
				nf.pods = s.feedFor(feedKey{kind: feedPods, namespace: ns, labels: ac.Selector}, a)
			case kindPods:
				nf.pods = s.feedFor(feedKey{kind: feedPods, namespace: ns, labels: ac.Selector}, a)
			case kindPool:
				nf.pools = s.feedFor(feedKey{kind: feedPools, namespace: ns, name: ac.InferencePool}, a)
				nf.pods = s.feedFor(feedKey{kind: feedPods, namespace: ns}, a)
			}
			for _, f := range []*feed{nf.slices, nf.pods, nf.pools} {
				if f != nil && !slices.Contains(a.feeds, f) {
					a.feeds = append(a.feeds, f)
				}
			}
			a.byNS[ns] = nf
		}
		s.apps[ac.App] = a
		s.order = append(s.order, a)
	}
	return s, nil
}

// restConfig is the kubeconfig file's config, or the in-cluster one.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.kubeconfig: %w", err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: not running in a cluster (%w): set kubernetes.kubeconfig", err)
	}
	return rc, nil
}

// Run starts the informers (and the scrapes), publishes every change
// until ctx ends, then stops them all and returns nil. Run may be called
// once.
func (s *Source) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("kubernetes: Run called twice")
	}
	s.started = true
	s.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	if s.scraper != nil {
		wg.Go(func() { _ = s.scraper.Run(ctx) })
	}
	for _, f := range s.feeds {
		wg.Go(func() { f.inf.RunWithContext(ctx) })
		wg.Go(func() {
			select {
			case <-f.reg.HasSyncedChecker().Done():
				f.mu.Lock()
				f.synced = true
				f.mu.Unlock()
				s.feedChanged(f)
			case <-ctx.Done():
			}
		})
	}
	s.publishLoop(ctx)
	return nil
}

// feedChanged marks f's apps for a rebuild and wakes the publisher.
func (s *Source) feedChanged(f *feed) {
	s.mu.Lock()
	for _, a := range f.apps {
		s.dirty[a] = true
	}
	s.mu.Unlock()
	s.wake()
}

// scraped is the scraper's OnResult: the apps reading t get a load-only
// rebuild.
func (s *Source) scraped(t scrape.Target) {
	s.mu.Lock()
	for _, a := range s.targetApps[t] {
		s.loadDirty[a] = true
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Source) wake() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// publishLoop is the one goroutine that rebuilds and publishes lists:
// membership and state changes at once, load-only changes at most every
// LoadCoalesce per round.
func (s *Source) publishLoop(ctx context.Context) {
	loadTimer := time.NewTimer(time.Hour)
	loadTimer.Stop()
	defer loadTimer.Stop()
	loadArmed := false
	for {
		flushLoads := false
		select {
		case <-ctx.Done():
			return
		case <-s.trigger:
		case <-loadTimer.C:
			loadArmed, flushLoads = false, true
		}
		s.mu.Lock()
		todo := s.dirty
		s.dirty = make(map[*app]bool)
		if flushLoads || s.cfg.LoadCoalesce < 0 {
			for a := range s.loadDirty {
				todo[a] = true
			}
			clear(s.loadDirty)
		} else {
			for a := range todo {
				delete(s.loadDirty, a) // its rebuild reads the latest loads
			}
			if len(s.loadDirty) > 0 && !loadArmed {
				loadTimer.Reset(s.cfg.LoadCoalesce)
				loadArmed = true
			}
		}
		s.mu.Unlock()
		if len(todo) == 0 {
			continue
		}
		targetsChanged := false
		for _, a := range s.order { // config order: deterministic
			if todo[a] && s.rebuild(a) {
				targetsChanged = true
			}
		}
		if targetsChanged {
			s.setTargets()
		}
	}
}

// rebuild recomputes a's list from the informer caches and the scrape
// results and publishes it if it changed. It reports whether a's scrape
// targets changed.
func (s *Source) rebuild(a *app) bool {
	anySynced := false
	for _, f := range a.feeds {
		synced, err := f.state()
		if !synced && err == nil {
			return false // still listing: publish the first list complete
		}
		anySynced = anySynced || synced
	}
	if !anySynced {
		return false // every watch fails: nothing known to publish
	}
	eps, err := s.endpoints(a)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.problem == nil || a.problem.Error() != err.Error() {
			s.cfg.Logger.Warn("kubernetes: cannot rebuild the app's list; keeping the last one, marked stale", "app", a.cfg.App, "err", err)
		}
		a.problem = err
		return false
	}
	if a.problem != nil {
		s.cfg.Logger.Info("kubernetes: app list rebuilt again", "app", a.cfg.App)
		a.problem = nil
	}
	now := time.Now()
	next := make(map[string]*discovery.Node, len(eps))
	var targets []scrape.Target
	changed := !a.have || len(eps) != len(a.nodes)
	version := a.list.Version + 1
	for _, ep := range eps {
		var res scrape.Result
		if ep.metrics != (scrape.Target{}) {
			targets = append(targets, ep.metrics)
			if s.scraper != nil {
				res, _ = s.scraper.Result(ep.metrics)
			}
		}
		n := newNode(a.cfg.App, ep, res, now)
		if old, ok := a.nodes[n.ID]; ok && sameNode(old, n) {
			n = old
		} else {
			n.Version = version
			changed = true
		}
		next[n.ID] = n
	}
	targetsChanged := !slices.Equal(targets, a.targets)
	a.targets = targets
	if !changed {
		return targetsChanged
	}
	list := discovery.OnlineList{App: a.cfg.App, Epoch: s.epoch, Version: version, Nodes: make([]*discovery.Node, 0, len(next))}
	for _, id := range slices.Sorted(maps.Keys(next)) {
		list.Nodes = append(list.Nodes, next[id])
	}
	a.list, a.nodes, a.have = list, next, true
	if s.cfg.OnUpdate != nil {
		s.cfg.OnUpdate(a.cfg.App, list)
	}
	return targetsChanged
}

// setTargets hands the union of every app's scrape targets to the
// scraper.
func (s *Source) setTargets() {
	if s.scraper == nil {
		return
	}
	byTarget := make(map[scrape.Target][]*app)
	for _, a := range s.order {
		a.mu.Lock()
		for _, t := range a.targets {
			byTarget[t] = append(byTarget[t], a)
		}
		a.mu.Unlock()
	}
	s.mu.Lock()
	s.targetApps = byTarget
	s.mu.Unlock()
	if err := s.scraper.Set(slices.Collect(maps.Keys(byTarget))); err != nil {
		s.cfg.Logger.Warn("kubernetes: some endpoints cannot be scraped", "err", err)
	}
}

// List returns app's latest list; false until the first one (or when app
// is not configured).
func (s *Source) List(app string) (discovery.OnlineList, bool) {
	a, ok := s.apps[app]
	if !ok {
		return discovery.OnlineList{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.list, a.have
}

// Stale reports whether app's view may be out of date: one of its
// watches is failing (forbidden, API server unreachable) or its last
// rebuild failed. The last list is kept meanwhile.
func (s *Source) Stale(app string) bool {
	st, _ := s.Status(app)
	return st.Stale
}

// Status is an app's view as the source sees it, for metrics and the
// admin API.
type Status struct {
	App     string
	Epoch   uint64
	Version uint64
	// Nodes counts the listed nodes, Targets those that are routing
	// targets (ready).
	Nodes, Targets int
	// Synced is true once every watch of the app has listed (or failed).
	Synced bool
	// Stale is true while a watch fails or the last rebuild failed; Err
	// then says why (the first such error).
	Stale bool
	Err   error
}

// Status returns app's status; false when app is not configured.
func (s *Source) Status(app string) (Status, bool) {
	a, ok := s.apps[app]
	if !ok {
		return Status{App: app}, false
	}
	st := Status{App: app, Synced: true}
	for _, f := range a.feeds {
		synced, err := f.state()
		if err != nil && st.Err == nil {
			st.Err = err
		}
		st.Synced = st.Synced && (synced || err != nil)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if st.Err == nil {
		st.Err = a.problem
	}
	st.Stale = st.Err != nil
	st.Epoch, st.Version, st.Nodes = a.list.Epoch, a.list.Version, len(a.list.Nodes)
	for _, n := range a.list.Nodes {
		if n.Eligible() {
			st.Targets++
		}
	}
	return st, true
}
