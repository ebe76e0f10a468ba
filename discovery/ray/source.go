package ray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/rayserve"
)

// Application is one Ray Serve application as the dashboard lists it.
type Application struct {
	Name string `json:"name"`
	// RoutePrefix is the HTTP route prefix ("/" for the root); "" with
	// HTTPRoute false when the dashboard's route_prefix is null.
	RoutePrefix string `json:"route_prefix"`
	HTTPRoute   bool   `json:"http_route"`
	// Status is the application status (RUNNING, DEPLOYING,
	// DEPLOY_FAILED, UNHEALTHY, DELETING, NOT_STARTED).
	Status string `json:"status"`
}

// Routable reports whether the gateway should route the app by its
// prefix: RUNNING with an HTTP route.
func (a Application) Routable() bool { return a.Status == "RUNNING" && a.HTTPRoute }

// Status describes the source's health, for the gateway's metrics.
type Status struct {
	// Stale is true while the last poll failed (or none succeeded yet):
	// the lists are the last known ones.
	Stale bool `json:"stale"`
	// LastSuccess is when a poll last succeeded (zero: never).
	LastSuccess time.Time `json:"last_success"`
	// LastError is the last poll's error ("" after a success).
	LastError string `json:"last_error,omitempty"`
	// Polls and Failures count polls of the dashboard and failed ones.
	Polls    uint64 `json:"polls"`
	Failures uint64 `json:"failures"`
	// Apps is the number of applications known.
	Apps int `json:"apps"`
}

// Source discovers Ray Serve applications and the nodes to route them to
// from a Ray dashboard. It is safe for concurrent use; start it with Run.
type Source struct {
	// immutable after New
	cfg    Config
	client *http.Client
	url    string
	epoch  uint64

	// pollMu serialises polls (Run and Refresh) and the callbacks.
	pollMu sync.Mutex
	warned map[string]bool // guarded by pollMu: one-time warnings

	mu     sync.Mutex
	views  map[string]*view // guarded by mu
	apps   []Application    // guarded by mu; sorted by name
	status Status           // guarded by mu
}

// view is one app's current list and the entries it was built from.
type view struct {
	list    discovery.OnlineList
	entries map[string]entry
}

// New validates cfg (applying defaults) and returns a Source; it starts
// nothing.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("discovery/ray: %w", err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 8,
			IdleConnTimeout: time.Minute, TLSHandshakeTimeout: cfg.Timeout}}
	}
	return &Source{cfg: cfg, client: client, url: strings.TrimSuffix(cfg.Dashboard, "/") + rayserve.ApplicationsPath,
		epoch: uint64(time.Now().UnixNano()), warned: map[string]bool{}, views: map[string]*view{}, status: Status{Stale: true}}, nil
}

// Run polls the dashboard every Refresh until ctx ends, then returns nil.
// The first poll is immediate.
func (s *Source) Run(ctx context.Context) error {
	s.cfg.Logger.Info("ray: watching the Ray dashboard", "config", s.cfg)
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	if s.cfg.HTTPClient == nil {
		defer s.client.CloseIdleConnections()
	}
	for {
		_ = s.Refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh polls the dashboard once now (and the nodes' metrics when
// MetricsPort is set), delivers what changed, and returns the dashboard
// error, if any. Run calls it; a gateway may call it once before serving.
func (s *Source) Refresh(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c, err := s.fetch(ctx)
	if err != nil {
		s.failed(err)
		return err
	}
	s.recovered()
	var loads map[string]nodeLoad
	if s.cfg.MetricsPort > 0 {
		loads = s.scrapeLoads(ctx, c)
	}
	s.apply(c, loads, time.Now())
	return nil
}

// fetch GETs and parses the applications.
func (s *Source) fetch(ctx context.Context) (rayserve.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return rayserve.Cluster{}, fmt.Errorf("ray: dashboard request: %w", err)
	}
	if s.cfg.Token != "" {
		v := s.cfg.Token
		if strings.EqualFold(s.cfg.TokenHeader, "Authorization") {
			v = "Bearer " + v
		}
		req.Header.Set(s.cfg.TokenHeader, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return rayserve.Cluster{}, fmt.Errorf("ray: dashboard %s: %w", redact(s.url), stripURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return rayserve.Cluster{}, fmt.Errorf("ray: dashboard %s: status %d", redact(s.url), resp.StatusCode)
	}
	c, err := rayserve.ParseApplications(resp.Body)
	if err != nil {
		return rayserve.Cluster{}, fmt.Errorf("ray: dashboard %s: %w", redact(s.url), err)
	}
	return c, nil
}

// stripURL drops the *url.Error wrapper (its URL is in our message).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// failed marks the view stale, keeping every list; it logs at warning on
// the transition only.
func (s *Source) failed(err error) {
	s.mu.Lock()
	was := s.status.Stale
	s.status.Stale = true
	s.status.Polls++
	s.status.Failures++
	s.status.LastError = err.Error()
	last := s.status.LastSuccess
	s.mu.Unlock()
	if !was {
		s.cfg.Logger.Warn("ray: dashboard unreachable; keeping the last view, marked stale", "err", err, "last_success", last)
	}
}

// recovered clears the staleness; it logs at info when the dashboard was
// unreachable before (not on the first success).
func (s *Source) recovered() {
	s.mu.Lock()
	was, last, first := s.status.Stale, s.status.LastSuccess, s.status.LastSuccess.IsZero()
	s.status.Stale = false
	s.status.Polls++
	s.status.LastError = ""
	s.status.LastSuccess = time.Now()
	s.mu.Unlock()
	if was && !first {
		s.cfg.Logger.Info("ray: dashboard reachable again", "stale_for", time.Since(last).Round(time.Millisecond))
	}
}

// apply turns a dashboard answer into lists and delivers the changes:
// removed apps get an empty list, then OnApps, then every changed list.
func (s *Source) apply(c rayserve.Cluster, loads map[string]nodeLoad, now time.Time) {
	apps := make([]Application, 0, len(c.Apps))
	for _, a := range c.Apps {
		apps = append(apps, Application{Name: a.Name, RoutePrefix: a.RoutePrefix, HTTPRoute: a.HTTPRoute, Status: a.Status})
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })

	type update struct {
		app  string
		list discovery.OnlineList
	}
	var removed, changed []update
	planned := make(map[string]map[string]entry, len(c.Apps))
	for _, a := range c.Apps {
		planned[a.Name] = s.plan(c, a, loads)
	}
	s.mu.Lock()
	appsChanged := !slices.Equal(apps, s.apps)
	s.apps = apps
	s.status.Apps = len(apps)
	seen := map[string]bool{}
	for _, a := range c.Apps {
		seen[a.Name] = true
		entries := planned[a.Name]
		v := s.views[a.Name]
		if v == nil {
			v = &view{list: discovery.OnlineList{App: a.Name, Epoch: s.epoch}, entries: map[string]entry{}}
			s.views[a.Name] = v
		} else if sameEntries(v.entries, entries) {
			continue
		}
		version := v.list.Version + 1
		old := map[string]*discovery.Node{}
		for _, n := range v.list.Nodes {
			old[n.ID] = n
		}
		list := discovery.OnlineList{App: a.Name, Epoch: s.epoch, Version: version, Nodes: make([]*discovery.Node, 0, len(entries))}
		ids := make([]string, 0, len(entries))
		for id := range entries {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			e := entries[id]
			if prev, ok := v.entries[id]; ok && prev == e && old[id] != nil {
				list.Nodes = append(list.Nodes, old[id]) // unchanged: shared
				continue
			}
			list.Nodes = append(list.Nodes, newNode(a.Name, e, now, version))
		}
		v.list, v.entries = list, entries
		changed = append(changed, update{a.Name, list})
	}
	for name, v := range s.views {
		if !seen[name] {
			delete(s.views, name)
			removed = append(removed, update{name, discovery.OnlineList{App: name, Epoch: s.epoch, Version: v.list.Version + 1}})
		}
	}
	s.mu.Unlock()

	sort.Slice(removed, func(i, j int) bool { return removed[i].app < removed[j].app })
	sort.Slice(changed, func(i, j int) bool { return changed[i].app < changed[j].app })
	if s.cfg.OnUpdate != nil {
		for _, u := range removed {
			s.cfg.OnUpdate(u.app, u.list)
		}
	}
	if appsChanged && s.cfg.OnApps != nil {
		s.cfg.OnApps(slices.Clone(apps))
	}
	if s.cfg.OnUpdate != nil {
		for _, u := range changed {
			s.cfg.OnUpdate(u.app, u.list)
		}
	}
}

func sameEntries(a, b map[string]entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// List returns app's current list; false if the app is not known. The
// list and its nodes are immutable snapshots.
func (s *Source) List(app string) (discovery.OnlineList, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[app]
	if v == nil {
		return discovery.OnlineList{}, false
	}
	return v.list, true
}

// Stale reports whether app's list may be out of date: the last poll of
// the dashboard failed, none succeeded yet, or the app is unknown.
func (s *Source) Stale(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.Stale || s.views[app] == nil
}

// Applications returns the applications of the last successful poll,
// sorted by name.
func (s *Source) Applications() []Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.apps)
}

// Status returns the source's health counters.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// warnOnce logs msg at warning level the first time key is seen.
// Called with pollMu held.
func (s *Source) warnOnce(key, msg string, args ...any) {
	if s.warned[key] {
		return
	}
	s.warned[key] = true
	s.cfg.Logger.Warn(msg, args...)
}

// scrapeLoads reads every node's metrics export endpoint (at most 8 at a
// time, each bounded by Timeout). A node whose scrape fails is absent.
func (s *Source) scrapeLoads(ctx context.Context, c rayserve.Cluster) map[string]nodeLoad {
	ips := map[string]string{} // node id → ip
	for _, p := range c.Proxies {
		ips[p.NodeID] = p.NodeIP
	}
	for _, a := range c.Apps {
		for _, d := range a.Deployments {
			for _, r := range d.Replicas {
				ips[r.NodeID] = r.NodeIP
			}
		}
	}
	out := map[string]nodeLoad{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for id, ip := range ips {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m, err := s.scrapeNode(ctx, ip)
			if err != nil {
				s.cfg.Logger.Debug("ray: node metrics", "node", id, "err", err)
				return
			}
			mu.Lock()
			out[id] = nodeLoad{metrics: m}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (s *Source) scrapeNode(ctx context.Context, ip string) (engines.Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	url := "http://" + joinHostPort(ip, s.cfg.MetricsPort) + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, engines.MaxInput+1))
	if err != nil {
		return nil, err
	}
	return engines.ParseMetrics(bytes.NewReader(b))
}
