package discovery

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ClientConfig configures a [Client]. Every field's doc states its default.
type ClientConfig struct {
	// Servers are the Resource instances' host:port. Required.
	Servers []string
	// Token is the shared bearer token.
	Token string
	// TLS, when set, makes the client speak HTTPS with this config (set
	// Certificates for mTLS). Alternatively set the files below.
	TLS *tls.Config
	// CAFile is a PEM bundle of the CAs that sign the Resource instances'
	// certificates (default: the system roots). CertFile and KeyFile are
	// the client's PEM certificate and key, for mTLS; they are re-read
	// when they change. Setting any of the three makes the client speak
	// HTTPS. Default: none (plain HTTP unless TLS is set).
	CAFile, CertFile, KeyFile string
	// ServerName is the name verified in the instances' certificates
	// (default: the host of each server address).
	ServerName string
	// Apps are watched from the start; Client.Watch adds more.
	Apps []string
	// Subscriber identifies this client to Resource for acknowledgements.
	// Default: hostname plus a random suffix.
	Subscriber string
	// PullInterval is the plain-pull period (and the longest retry
	// backoff). Default 3 s.
	PullInterval time.Duration
	// WatchWait is how long a long-poll waits for a change. Default 25 s.
	// Negative disables watching: the client pulls every PullInterval.
	WatchWait time.Duration
	// RequestTimeout bounds a request beyond its WatchWait. Default 5 s.
	RequestTimeout time.Duration
	// StaleAfter marks an app's view stale when no Resource instance has
	// answered for this long. Default PullInterval (any failed request also
	// marks it stale until the next success).
	StaleAfter time.Duration
	// LoadCoalesce holds deltas that only move the load of known nodes for
	// up to this long and delivers them together, so a large app whose loads
	// churn does not rebuild the list (and the gateway its table) on every
	// Resource window. Deltas that add, remove or change the state,
	// readiness or identity of a node are delivered at once, with whatever
	// was held.
	// Default 1 s (gateways recompute weights every 3 s); negative delivers
	// every delta at once.
	LoadCoalesce time.Duration
	// OnUpdate, when set, receives every new version of an app's list. It
	// is called from that app's watch goroutine: calls for one app are
	// serialised, calls for different apps may run concurrently. It must not
	// block (hand the list to the owner and return) and must not modify the
	// list.
	OnUpdate func(app string, list OnlineList)
	// Logger defaults to slog.Default(). An outage (every instance failed
	// in a row for an app) is logged at warning level once, its recovery
	// at info.
	Logger *slog.Logger
	// Meter, when set, receives the client's metrics (the gateway passes
	// the meter it exports), by app: switchyard_discovery_stale (1 while
	// the view is stale: the list is the last one known),
	// switchyard_discovery_last_contact_age_seconds,
	// switchyard_discovery_nodes, switchyard_discovery_updates_total,
	// switchyard_discovery_outages_total; and by server
	// switchyard_discovery_fetch_errors_total. The callback is registered
	// by NewClient and unregistered when Run returns. Default: none.
	Meter metric.Meter
}

func (c *ClientConfig) applyDefaults() {
	if c.PullInterval == 0 {
		c.PullInterval = 3 * time.Second
	}
	if c.WatchWait == 0 {
		c.WatchWait = 25 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = c.PullInterval
	}
	if c.LoadCoalesce == 0 {
		c.LoadCoalesce = time.Second
	}
	if c.Subscriber == "" {
		h, _ := os.Hostname()
		var b [4]byte
		_, _ = crand.Read(b[:])
		c.Subscriber = h + "-" + hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns an error naming the first bad field.
func (c *ClientConfig) Validate() error {
	switch {
	case len(c.Servers) == 0:
		return errors.New("discovery: client config: Servers is empty")
	case c.PullInterval < 10*time.Millisecond:
		return fmt.Errorf("discovery: client config: PullInterval %v below 10ms", c.PullInterval)
	case c.RequestTimeout < 10*time.Millisecond:
		return fmt.Errorf("discovery: client config: RequestTimeout %v below 10ms", c.RequestTimeout)
	case len(c.Subscriber) > 128:
		return errors.New("discovery: client config: Subscriber longer than 128 bytes")
	}
	return c.validateTLS()
}

// Client keeps a live view of the online lists of the apps it watches, for a
// gateway. It long-polls one Resource instance for deltas, falls back to
// plain pulls and fails over to the next instance on any error, and
// acknowledges each version it applied (the next request carries it). It
// never empties a view because Resource is unreachable: it keeps the last
// list and reports it stale.
//
// A Client is safe for concurrent use. Start it with Run.
type Client struct {
	cfg       ClientConfig
	http      *http.Client
	fetchErrs map[string]*atomic.Uint64 // by server; immutable map
	metrics   metric.Registration       // nil without a Meter

	mu     sync.Mutex
	views  map[string]*view // guarded by mu
	runCtx context.Context  // guarded by mu; set while Run runs
	wg     sync.WaitGroup
}

// view is one app's state. Fields are guarded by mu.
type view struct {
	mu      sync.Mutex
	epoch   uint64
	version uint64
	index   map[string]int // node id → position in list.Nodes
	list    OnlineList
	// held are load-only upserts acknowledged but not yet in list, since
	// heldSince (see LoadCoalesce).
	held      map[string]*Node
	heldSince time.Time
	have      bool
	lastOK    time.Time
	failing   bool
	server    string
	started   bool
	// failures counts consecutive failed requests; an outage starts when
	// every server failed in a row (outage, outageAt) and ends at the
	// next answer.
	failures int
	outage   bool
	outageAt time.Time
	outages  uint64 // outages so far
	updates  uint64 // lists delivered so far
}

// ClientStatus is an app's view as the client sees it, for metrics.
type ClientStatus struct {
	App     string
	Epoch   uint64
	Version uint64
	Nodes   int
	// Stale is true while the view could not be refreshed (the list is the
	// last one known).
	Stale       bool
	LastContact time.Time
	Server      string
}

// NewClient checks cfg and returns a client; call Run to start it.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	cfg.TLS = tc
	tr := &http.Transport{
		TLSClientConfig:     tc,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.RequestTimeout,
		DisableCompression:  true,
	}
	c := &Client{cfg: cfg, http: &http.Client{Transport: tr}, views: make(map[string]*view), fetchErrs: map[string]*atomic.Uint64{}}
	for _, a := range cfg.Apps {
		c.views[a] = &view{}
	}
	for _, srv := range cfg.Servers {
		c.fetchErrs[srv] = &atomic.Uint64{}
	}
	if cfg.Meter != nil {
		if err := c.registerMetrics(cfg.Meter); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// registerMetrics registers the client's metrics with m (see
// ClientConfig.Meter); values are read at collection time.
func (c *Client) registerMetrics(m metric.Meter) error {
	stale, err1 := m.Int64ObservableGauge("switchyard_discovery_stale",
		metric.WithDescription("1 while an app's view is not being refreshed (no Resource instance answered lately; the list is the last one known)."))
	age, err2 := m.Float64ObservableGauge("switchyard_discovery_last_contact_age_seconds",
		metric.WithDescription("Seconds since a Resource instance last answered for the app (absent before the first answer)."))
	nodes, err3 := m.Int64ObservableGauge("switchyard_discovery_nodes", metric.WithDescription("Nodes in the app's view."))
	updates, err4 := m.Int64ObservableCounter("switchyard_discovery_updates", metric.WithDescription("New list versions delivered, by app."))
	outages, err5 := m.Int64ObservableCounter("switchyard_discovery_outages",
		metric.WithDescription("Times every Resource instance failed in a row for an app (logged at warning level)."))
	fetchErrs, err6 := m.Int64ObservableCounter("switchyard_discovery_fetch_errors", metric.WithDescription("Failed list requests, by server."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return fmt.Errorf("discovery: client metrics: %w", err)
	}
	serverAttrs := make(map[string]metric.ObserveOption, len(c.fetchErrs))
	for srv := range c.fetchErrs {
		serverAttrs[srv] = metric.WithAttributeSet(attribute.NewSet(attribute.String("server", srv)))
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for srv, n := range c.fetchErrs {
			o.ObserveInt64(fetchErrs, int64(n.Load()), serverAttrs[srv])
		}
		c.mu.Lock()
		apps := make([]string, 0, len(c.views))
		for app := range c.views {
			apps = append(apps, app)
		}
		c.mu.Unlock()
		now := time.Now()
		for _, app := range apps {
			st := c.Status(app)
			v := c.view(app)
			v.mu.Lock()
			nUpdates, nOutages := v.updates, v.outages
			v.mu.Unlock()
			attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("app", app)))
			var s int64
			if st.Stale {
				s = 1
			}
			o.ObserveInt64(stale, s, attrs)
			if !st.LastContact.IsZero() {
				o.ObserveFloat64(age, now.Sub(st.LastContact).Seconds(), attrs)
			}
			o.ObserveInt64(nodes, int64(st.Nodes), attrs)
			o.ObserveInt64(updates, int64(nUpdates), attrs)
			o.ObserveInt64(outages, int64(nOutages), attrs)
		}
		return nil
	}, stale, age, nodes, updates, outages, fetchErrs)
	if err != nil {
		return fmt.Errorf("discovery: client metrics: %w", err)
	}
	c.metrics = reg
	return nil
}

// SubscriberID returns the id this client acknowledges versions under.
func (c *Client) SubscriberID() string { return c.cfg.Subscriber }

// Watch adds app to the watched apps (no-op if already watched).
func (c *Client) Watch(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.views[app]; ok {
		return
	}
	v := &view{}
	c.views[app] = v
	if c.runCtx != nil {
		c.startLocked(c.runCtx, app, v)
	}
}

func (c *Client) startLocked(ctx context.Context, app string, v *view) {
	if v.started {
		return
	}
	v.started = true
	c.wg.Go(func() { c.loop(ctx, app, v) })
}

// Run watches every app until ctx is done, then returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	c.runCtx = ctx
	for app, v := range c.views {
		c.startLocked(ctx, app, v)
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.wg.Wait()
	c.http.CloseIdleConnections()
	if c.metrics != nil {
		_ = c.metrics.Unregister()
	}
	return ctx.Err()
}

func (c *Client) view(app string) *view {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.views[app]
}

// List returns the app's last known list and whether one is known. The list
// must not be modified.
func (c *Client) List(app string) (OnlineList, bool) {
	v := c.view(app)
	if v == nil {
		return OnlineList{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.list, v.have
}

// Stale reports whether the app's view is not being refreshed (no Resource
// instance answered lately); its list is then the last one known.
func (c *Client) Stale(app string) bool { return c.Status(app).Stale }

// Status returns the app's view status.
func (c *Client) Status(app string) ClientStatus {
	st := ClientStatus{App: app, Stale: true}
	v := c.view(app)
	if v == nil {
		return st
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	st.Epoch, st.Version, st.Nodes = v.epoch, v.version, len(v.list.Nodes)
	st.LastContact, st.Server = v.lastOK, v.server
	st.Stale = v.failing || !v.have || time.Since(v.lastOK) > c.cfg.StaleAfter+c.cfg.WatchWait+c.cfg.RequestTimeout
	return st
}

// loop keeps one app's view fresh until ctx is done.
func (c *Client) loop(ctx context.Context, app string, v *view) {
	servers := c.cfg.Servers
	idx := rand.IntN(len(servers))
	backoff := 50 * time.Millisecond
	t := time.NewTimer(0)
	<-t.C
	defer t.Stop()
	sleep := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		v.mu.Lock()
		epoch, since, failing, have := v.epoch, v.version, v.failing, v.have
		v.mu.Unlock()
		wait := c.cfg.WatchWait
		if failing || !have || wait < 0 {
			wait = 0 // a plain pull
		}
		v.mu.Lock()
		if len(v.held) > 0 && wait > 0 {
			// Come back in time to deliver what is held.
			wait = max(min(wait, c.cfg.LoadCoalesce-time.Since(v.heldSince)), time.Millisecond)
		}
		v.mu.Unlock()
		server := servers[idx]
		d, err := c.fetch(ctx, server, app, epoch, since, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.fetchErrs[server].Add(1)
			v.mu.Lock()
			v.failing = true
			v.failures++
			outage := !v.outage && v.failures >= len(servers)
			if outage {
				v.outage, v.outageAt = true, time.Now()
				v.outages++
			}
			lastOK, nodes := v.lastOK, len(v.list.Nodes)
			v.mu.Unlock()
			if outage {
				args := []any{"app", app, "err", err, "nodes_kept", nodes}
				if !lastOK.IsZero() {
					args = append(args, "last_contact", lastOK.Format(time.RFC3339))
				}
				c.cfg.Logger.Warn("discovery: no Resource instance answers; serving the last list known", args...)
			} else {
				c.cfg.Logger.Debug("discovery: fetch failed", "app", app, "server", server, "err", err)
			}
			idx = (idx + 1) % len(servers)
			if !sleep(backoff) {
				return
			}
			backoff = min(backoff*2, c.cfg.PullInterval)
			continue
		}
		backoff = 50 * time.Millisecond
		list, changed := c.apply(v, server, d)
		v.mu.Lock()
		v.failures = 0
		recovered, downAt := v.outage, v.outageAt
		v.outage = false
		if changed {
			v.updates++
		}
		v.mu.Unlock()
		if recovered {
			c.cfg.Logger.Info("discovery: Resource answers again", "app", app, "server", server, "outage", time.Since(downAt).Round(time.Millisecond))
		}
		if changed && c.cfg.OnUpdate != nil {
			c.cfg.OnUpdate(app, list)
		}
		if c.cfg.WatchWait < 0 {
			if changed {
				c.ack(ctx, server, app, list.Epoch, list.Version)
			}
			if !sleep(c.cfg.PullInterval) {
				return
			}
		}
	}
}

// apply merges d into v and returns the new list if it changed. The list
// handed out before is never modified: a delta copies the node slice (one
// memmove) and patches the copy. Load-only deltas are held (and their
// version acknowledged) for up to LoadCoalesce.
func (c *Client) apply(v *view, server string, d *Delta) (OnlineList, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	v.lastOK, v.failing, v.server = now, false, server
	due := len(v.held) > 0 && now.Sub(v.heldSince) >= c.cfg.LoadCoalesce
	var nodes []*Node
	switch {
	case d.Reset:
		nodes = make([]*Node, 0, len(d.Upserts))
		v.index = make(map[string]int, len(d.Upserts))
		v.held = nil
	case d.Epoch != v.epoch || d.From != v.version || d.To < d.From:
		// Not a delta of our view: force a reset on the next request.
		v.epoch, v.version, v.held = 0, 0, nil
		return OnlineList{}, false
	case d.To == d.From && !due:
		return OnlineList{}, false
	default:
		if !due && c.holdLocked(v, d, now) {
			v.version = d.To
			return OnlineList{}, false
		}
		nodes = make([]*Node, len(v.list.Nodes), len(v.list.Nodes)+len(d.Upserts))
		copy(nodes, v.list.Nodes)
		for id, n := range v.held {
			nodes[v.index[id]] = n
		}
		v.held = nil
	}
	for i := range d.Upserts {
		n := &d.Upserts[i]
		if j, ok := v.index[n.ID]; ok {
			nodes[j] = n
			continue
		}
		v.index[n.ID] = len(nodes)
		nodes = append(nodes, n)
	}
	for _, id := range d.Removes {
		j, ok := v.index[id]
		if !ok {
			continue
		}
		last := len(nodes) - 1
		nodes[j] = nodes[last]
		v.index[nodes[j].ID] = j
		nodes[last] = nil
		nodes = nodes[:last]
		delete(v.index, id)
	}
	v.epoch, v.version, v.have = d.Epoch, d.To, true
	v.list = OnlineList{App: d.App, Epoch: d.Epoch, Version: d.To, Nodes: nodes}
	return v.list, true
}

// holdLocked holds d if it only moves the load of known nodes, and reports
// whether it did.
func (c *Client) holdLocked(v *view, d *Delta, now time.Time) bool {
	if c.cfg.LoadCoalesce <= 0 || len(d.Removes) > 0 || !v.have {
		return false
	}
	for i := range d.Upserts {
		n := &d.Upserts[i]
		cur, ok := v.held[n.ID]
		if !ok {
			j, known := v.index[n.ID]
			if !known {
				return false
			}
			cur = v.list.Nodes[j]
		}
		// A readiness change (an engine falling asleep or becoming busy)
		// decides whether the node is picked: deliver it at once.
		if cur.State != n.State || cur.Load.Readiness != n.Load.Readiness || !sameEndpoint(cur, n) {
			return false
		}
	}
	if len(v.held) == 0 {
		v.held = make(map[string]*Node, len(d.Upserts))
		v.heldSince = now
	}
	for i := range d.Upserts {
		v.held[d.Upserts[i].ID] = &d.Upserts[i]
	}
	return true
}

// sameEndpoint reports whether a and b describe the same serving endpoint
// (everything but state, load and bookkeeping).
func sameEndpoint(a, b *Node) bool {
	if a.Engine != b.Engine || a.Accelerator != b.Accelerator || a.Capacity != b.Capacity || len(a.Addresses) != len(b.Addresses) {
		return false
	}
	for k, v := range a.Addresses {
		if b.Addresses[k] != v {
			return false
		}
	}
	return true
}

func (c *Client) newRequest(ctx context.Context, method, server, path string, q url.Values) (*http.Request, error) {
	scheme := "http"
	if c.cfg.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: server, Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return req, nil
}

// fetch asks one instance for the changes since (epoch, since), waiting up
// to wait for one. Asking acknowledges since.
func (c *Client) fetch(ctx context.Context, server, app string, epoch, since uint64, wait time.Duration) (*Delta, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+c.cfg.RequestTimeout)
	defer cancel()
	q := url.Values{}
	q.Set("since", strconv.FormatUint(since, 10))
	q.Set("epoch", strconv.FormatUint(epoch, 10))
	q.Set("subscriber", c.cfg.Subscriber)
	q.Set("format", "bin")
	// The binary versions this client decodes beyond 1: a server takes the
	// newest it speaks; one of issue 13 reads the first value only, one
	// older still ignores them and sends version 1.
	for v := Version2; v <= CurrentVersion; v++ {
		q.Add("wire", strconv.Itoa(int(v)))
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	req, err := c.newRequest(ctx, http.MethodGet, server, "/v1/apps/"+url.PathEscape(app)+"/delta", q)
	if err != nil {
		return nil, fmt.Errorf("discovery: watch %s: %w", app, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: watch %s on %s: %w", app, server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("discovery: watch %s on %s: read: %w", app, server, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("discovery: watch %s on %s: %w: %.200s", app, server, ErrBadToken, body)
	case http.StatusForbidden:
		return nil, fmt.Errorf("discovery: watch %s on %s: %w: %.200s", app, server, ErrForbidden, body)
	default:
		return nil, fmt.Errorf("discovery: watch %s on %s: %s: %.200s", app, server, resp.Status, body)
	}
	var d Delta
	if err := DecodeDelta(body, &d, nil); err != nil {
		return nil, fmt.Errorf("discovery: watch %s on %s: decode: %w", app, server, err)
	}
	return &d, nil
}

// ack tells server the client applied version (pull mode; watches ack with
// their next request).
func (c *Client) ack(ctx context.Context, server, app string, epoch, version uint64) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	q := url.Values{}
	q.Set("subscriber", c.cfg.Subscriber)
	q.Set("epoch", strconv.FormatUint(epoch, 10))
	q.Set("version", strconv.FormatUint(version, 10))
	req, err := c.newRequest(ctx, http.MethodPost, server, "/v1/apps/"+url.PathEscape(app)+"/ack", q)
	if err != nil {
		return
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
