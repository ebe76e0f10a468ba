package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RayConfig describes a simulated Ray Serve cluster (the "ray" section of
// a fleet YAML): a stand-in Ray dashboard serving GET
// /api/serve/applications/, and one Serve HTTP proxy per node (at the
// node's IP and the shared http_options.port, as in Ray) in front of
// simulated replicas (sim Nodes).
//
//	ray:
//	  proxy_location: EveryNode        # or HeadOnly, Disabled
//	  nodes:
//	    - {id: head}                   # 127.0.0.1; the first node is the head
//	    - {id: gpu-1, ip: 127.0.0.3}
//	  apps:
//	    - name: llm
//	      route_prefix: /llm
//	      num_gpus: 1
//	      accelerator_type: H100
//	      replica: {model: llama, profile: h100, override: {prefill: 20ms}}
//	      replicas: [{node: gpu-1, count: 2}, {node: head}]
type RayConfig struct {
	// DashboardListen is the dashboard's address (default
	// "127.0.0.1:0"; Ray's is :8265).
	DashboardListen string `yaml:"dashboard_listen" json:"dashboard_listen,omitempty"`
	// HTTPPort is the port of every node's HTTP proxy, on the node's IP
	// (Ray's http_options.port; default 0: one free port for all nodes).
	HTTPPort int `yaml:"http_port" json:"http_port,omitempty"`
	// MetricsPort is the port of every node's metrics export endpoint
	// (Ray's --metrics-export-port), serving ray_serve_* for the replicas
	// and proxy on that node (default 0: one free port for all nodes).
	MetricsPort int `yaml:"metrics_port" json:"metrics_port,omitempty"`
	// ProxyLocation is "EveryNode" (default: a proxy on every node),
	// "HeadOnly" (one proxy, on the head node) or "Disabled".
	ProxyLocation string `yaml:"proxy_location" json:"proxy_location,omitempty"`
	// TokenEnv names an environment variable holding a token the
	// dashboard then requires as "Authorization: Bearer TOKEN" (Ray's
	// token authentication); Token sets it directly (tests).
	TokenEnv string `yaml:"token_env" json:"token_env,omitempty"`
	Token    string `yaml:"-" json:"-"`
	// Nodes are the Ray nodes; the first is the head unless one says
	// head: true. At least one.
	Nodes []RayNodeConfig `yaml:"nodes" json:"nodes"`
	// Apps are the Serve applications.
	Apps []RayAppConfig `yaml:"apps" json:"apps"`
}

// RayNodeConfig is one Ray node.
type RayNodeConfig struct {
	// ID is the Ray node id (default "node-N").
	ID string `yaml:"id" json:"id"`
	// IP is the node's address (default 127.0.0.(N+1); any 127/8 address
	// works on Linux loopback).
	IP string `yaml:"ip" json:"ip"`
	// Head marks the head node.
	Head bool `yaml:"head" json:"head,omitempty"`
}

// RayAppConfig is one Serve application with one (ingress) deployment.
type RayAppConfig struct {
	// Name is the application name. Required.
	Name string `yaml:"name" json:"name"`
	// RoutePrefix is the HTTP route prefix (default "/" + Name).
	RoutePrefix string `yaml:"route_prefix" json:"route_prefix"`
	// Deployment names the ingress deployment (default "LLMServer").
	Deployment string `yaml:"deployment" json:"deployment,omitempty"`
	// NumGPUs, NPUs and AcceleratorType are each replica's
	// ray_actor_options (num_gpus, resources.NPU, accelerator_type).
	NumGPUs         float64 `yaml:"num_gpus" json:"num_gpus,omitempty"`
	NPUs            float64 `yaml:"npus" json:"npus,omitempty"`
	AcceleratorType string  `yaml:"accelerator_type" json:"accelerator_type,omitempty"`
	// MaxOngoingRequests bounds the requests a proxy assigns to one
	// replica at a time; beyond it requests queue in the proxy (Ray's
	// max_ongoing_requests; default 5, Ray's default since 2.32).
	MaxOngoingRequests int `yaml:"max_ongoing_requests" json:"max_ongoing_requests,omitempty"`
	// Replica is the template of every replica's simulated engine
	// (listen addresses and ID are set by the cluster).
	Replica Config `yaml:"replica" json:"replica"`
	// Replicas places replicas on nodes.
	Replicas []RayPlacement `yaml:"replicas" json:"replicas"`
}

// RayPlacement puts Count (default 1) replicas on Node.
type RayPlacement struct {
	Node  string `yaml:"node" json:"node"`
	Count int    `yaml:"count" json:"count,omitempty"`
}

// Ray states, as python/ray/serve/schema.py and _private/common.py
// spell them.
const (
	RayHealthy   = "HEALTHY"
	RayUnhealthy = "UNHEALTHY"
	RayDraining  = "DRAINING"
	RayStarting  = "STARTING"
	RayRunning   = "RUNNING"
	RayStopping  = "STOPPING"
)

var (
	rayProxyStates   = []string{"STARTING", "HEALTHY", "UNHEALTHY", "DRAINING", "DRAINED"}
	rayReplicaStates = []string{"STARTING", "UPDATING", "RECOVERING", "RUNNING", "STOPPING", "PENDING_MIGRATION"}
	rayAppStates     = []string{"NOT_STARTED", "DEPLOYING", "DEPLOY_FAILED", "RUNNING", "UNHEALTHY", "DELETING"}
)

// Validate applies defaults and checks the config; errors name the field.
func (c *RayConfig) Validate() error {
	if c.DashboardListen == "" {
		c.DashboardListen = "127.0.0.1:0"
	}
	switch c.ProxyLocation {
	case "":
		c.ProxyLocation = "EveryNode"
	case "EveryNode", "HeadOnly", "Disabled":
	default:
		return fmt.Errorf("sim: ray.proxy_location %q: want EveryNode, HeadOnly or Disabled", c.ProxyLocation)
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 || c.MetricsPort < 0 || c.MetricsPort > 65535 {
		return fmt.Errorf("sim: ray.http_port/metrics_port out of range")
	}
	if c.TokenEnv != "" && c.Token == "" {
		c.Token = os.Getenv(c.TokenEnv)
		if c.Token == "" {
			return fmt.Errorf("sim: ray.token_env: environment variable %s is empty", c.TokenEnv)
		}
	}
	if len(c.Nodes) == 0 {
		return errors.New("sim: ray.nodes: at least one node")
	}
	heads := 0
	ids := map[string]bool{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.ID == "" {
			n.ID = "node-" + strconv.Itoa(i)
		}
		if n.IP == "" {
			if i > 253 {
				return fmt.Errorf("sim: ray.nodes[%d].ip: set it (no default beyond 254 nodes)", i)
			}
			n.IP = "127.0.0." + strconv.Itoa(i+1)
		}
		if ip := net.ParseIP(n.IP); ip == nil {
			return fmt.Errorf("sim: ray.nodes[%d].ip %q is not an IP address", i, n.IP)
		}
		if ids[n.ID] {
			return fmt.Errorf("sim: ray.nodes[%d].id %q repeated", i, n.ID)
		}
		ids[n.ID] = true
		if n.Head {
			heads++
		}
	}
	if heads > 1 {
		return errors.New("sim: ray.nodes: more than one head")
	}
	if heads == 0 {
		c.Nodes[0].Head = true
	}
	names, prefixes := map[string]bool{}, map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.Name == "" {
			return fmt.Errorf("sim: ray.apps[%d].name is required", i)
		}
		if names[a.Name] {
			return fmt.Errorf("sim: ray.apps[%d].name %q repeated", i, a.Name)
		}
		names[a.Name] = true
		if a.RoutePrefix == "" {
			a.RoutePrefix = "/" + a.Name
		}
		if !strings.HasPrefix(a.RoutePrefix, "/") || (len(a.RoutePrefix) > 1 && strings.HasSuffix(a.RoutePrefix, "/")) || strings.ContainsAny(a.RoutePrefix, "{}") {
			// The rules of Ray's _route_prefix_format validator.
			return fmt.Errorf("sim: ray.apps[%d].route_prefix %q: must start with /, not end with / (unless it is /), and have no { or }", i, a.RoutePrefix)
		}
		if prefixes[a.RoutePrefix] {
			return fmt.Errorf("sim: ray.apps[%d].route_prefix %q repeated", i, a.RoutePrefix)
		}
		prefixes[a.RoutePrefix] = true
		if a.Deployment == "" {
			a.Deployment = "LLMServer"
		}
		if a.MaxOngoingRequests == 0 {
			a.MaxOngoingRequests = 5
		}
		if a.MaxOngoingRequests < 0 || a.NumGPUs < 0 || a.NPUs < 0 {
			return fmt.Errorf("sim: ray.apps[%d]: max_ongoing_requests, num_gpus and npus must not be negative", i)
		}
		tmpl := a.Replica
		if err := tmpl.Validate(); err != nil {
			return fmt.Errorf("sim: ray.apps[%d].replica: %w", i, err)
		}
		for j, p := range a.Replicas {
			if !ids[p.Node] {
				return fmt.Errorf("sim: ray.apps[%d].replicas[%d].node %q is not a ray node", i, j, p.Node)
			}
			if p.Count < 0 {
				return fmt.Errorf("sim: ray.apps[%d].replicas[%d].count must be >= 0", i, j)
			}
		}
	}
	return nil
}

// RayCluster is a running simulated Ray Serve cluster. Its methods are
// safe for concurrent use; a RayCluster must not be copied.
type RayCluster struct {
	// immutable after StartRay
	cfg         RayConfig
	httpPort    int
	metricsPort int
	transport   *http.Transport
	started     time.Time

	mu       sync.Mutex
	nodes    []*rayNode             // guarded by mu; config order
	apps     []*rayApp              // guarded by mu; config order
	replicas map[string]*rayReplica // guarded by mu; by replica id
	seq      int                    // guarded by mu; replica ids
	changed  chan struct{}          // guarded by mu; closed on every change that may free capacity
	closed   bool                   // guarded by mu

	dash       *rayDashboard
	dashStatus atomic.Int32 // 0: serve; else the status code /api/serve/applications/ answers
}

type rayNode struct {
	id, ip string
	head   bool
	// guarded by RayCluster.mu
	proxy       *rayServer // nil when stopped or not placed
	proxyStatus string     // "" when the node has no proxy
	metrics     *rayServer
	queued      map[string]*atomic.Int64 // app → requests queued in this node's proxy
}

type rayApp struct {
	cfg    RayAppConfig
	status string // guarded by RayCluster.mu
	// deployed is when the app was deployed (last_deployed_time_s).
	deployed time.Time
}

type rayReplica struct {
	id, app, nodeID string
	node            *Node
	started         time.Time
	pid             int
	ongoing         atomic.Int64
	state           string // guarded by RayCluster.mu
}

// StartRay starts the dashboard, the proxies and the replicas. ctx bounds
// start-up only; stop the cluster with Close.
func StartRay(ctx context.Context, cfg RayConfig) (*RayCluster, error) {
	cfg.Nodes = append([]RayNodeConfig(nil), cfg.Nodes...)
	cfg.Apps = append([]RayAppConfig(nil), cfg.Apps...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &RayCluster{cfg: cfg, replicas: map[string]*rayReplica{}, changed: make(chan struct{}), started: time.Now(),
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: 5 * time.Minute}}
	for _, nc := range cfg.Nodes {
		c.nodes = append(c.nodes, &rayNode{id: nc.ID, ip: nc.IP, head: nc.Head, queued: map[string]*atomic.Int64{}})
	}
	for _, ac := range cfg.Apps {
		c.apps = append(c.apps, &rayApp{cfg: ac, status: RayRunning, deployed: time.Now()})
		for _, n := range c.nodes {
			n.queued[ac.Name] = &atomic.Int64{}
		}
	}
	fail := func(err error) (*RayCluster, error) {
		c.Close()
		return nil, err
	}
	var err error
	if c.httpPort, err = c.bindShared(ctx, cfg.HTTPPort, func(n *rayNode, l net.Listener) {
		if c.hasProxy(n) {
			n.proxy = c.serveProxy(n, l)
			n.proxyStatus = RayHealthy
		} else {
			l.Close()
		}
	}); err != nil {
		return fail(fmt.Errorf("sim: ray proxies: %w", err))
	}
	if c.metricsPort, err = c.bindShared(ctx, cfg.MetricsPort, func(n *rayNode, l net.Listener) {
		n.metrics = c.serveMetrics(n, l)
	}); err != nil {
		return fail(fmt.Errorf("sim: ray metrics: %w", err))
	}
	for _, a := range cfg.Apps {
		for _, p := range a.Replicas {
			for k := 0; k < max(p.Count, 1); k++ {
				if _, err := c.AddReplica(ctx, a.Name, p.Node); err != nil {
					return fail(err)
				}
			}
		}
	}
	if c.dash, err = c.startDashboard(ctx); err != nil {
		return fail(err)
	}
	return c, nil
}

// hasProxy reports whether proxy_location puts a proxy on n.
func (c *RayCluster) hasProxy(n *rayNode) bool {
	switch c.cfg.ProxyLocation {
	case "HeadOnly":
		return n.head
	case "Disabled":
		return false
	}
	return true
}

// bindShared listens on every node's IP at one port (port, or a free one
// found by binding the first node's IP at :0), retrying a few times when
// another process holds the port on some IP.
func (c *RayCluster) bindShared(ctx context.Context, port int, use func(*rayNode, net.Listener)) (int, error) {
	var lc net.ListenConfig
	var lastErr error
	for try := 0; try < 10; try++ {
		var ls []net.Listener
		p := port
		ok := true
		for _, n := range c.nodes {
			l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(n.ip, strconv.Itoa(p)))
			if err != nil {
				lastErr = err
				ok = false
				break
			}
			if p == 0 {
				p = l.Addr().(*net.TCPAddr).Port
			}
			ls = append(ls, l)
		}
		if ok {
			c.mu.Lock()
			for i, n := range c.nodes {
				use(n, ls[i])
			}
			c.mu.Unlock()
			return p, nil
		}
		for _, l := range ls {
			l.Close()
		}
		if port != 0 {
			break
		}
	}
	return 0, lastErr
}

// DashboardURL is the dashboard's base URL ("http://host:port").
func (c *RayCluster) DashboardURL() string { return "http://" + c.dash.addr }

// HTTPPort is every proxy's port (http_options.port).
func (c *RayCluster) HTTPPort() int { return c.httpPort }

// MetricsPort is every node's metrics export port.
func (c *RayCluster) MetricsPort() int { return c.metricsPort }

// NodeIP returns the IP of node id ("" if unknown).
func (c *RayCluster) NodeIP(id string) string {
	if n := c.node(id); n != nil {
		return n.ip
	}
	return ""
}

// ProxyAddr is node id's proxy address (ip:http_port), whether or not a
// proxy runs there.
func (c *RayCluster) ProxyAddr(id string) string {
	return net.JoinHostPort(c.NodeIP(id), strconv.Itoa(c.httpPort))
}

func (c *RayCluster) node(id string) *rayNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (c *RayCluster) app(name string) *rayApp {
	for _, a := range c.apps {
		if a.cfg.Name == name {
			return a
		}
	}
	return nil
}

// notifyLocked wakes requests queued in proxies.
func (c *RayCluster) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// RayReplicaInfo describes one replica.
type RayReplicaInfo struct {
	ID    string `json:"id"`
	App   string `json:"app"`
	Node  string `json:"node"`
	State string `json:"state"`
	// Addr is the replica's engine (sim Node) HTTP address.
	Addr string `json:"addr"`
	// Ongoing is the requests proxies have assigned to it now.
	Ongoing int64 `json:"ongoing"`
}

// Replicas lists app's replicas ("" for all apps), by id.
func (c *RayCluster) Replicas(app string) []RayReplicaInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []RayReplicaInfo
	for _, r := range c.replicas {
		if app == "" || r.app == app {
			out = append(out, RayReplicaInfo{ID: r.id, App: r.app, Node: r.nodeID, State: r.state, Addr: r.node.Addr(), Ongoing: r.ongoing.Load()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Replica returns the simulated engine behind replica id, or nil.
func (c *RayCluster) Replica(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.replicas[id]; r != nil {
		return r.node
	}
	return nil
}

// AddReplica starts a RUNNING replica of app on node and returns its id
// ("app#Deployment#xxxxxx").
func (c *RayCluster) AddReplica(ctx context.Context, app, node string) (string, error) {
	c.mu.Lock()
	a, n := c.app(app), c.node(node)
	if a == nil || n == nil || c.closed {
		c.mu.Unlock()
		return "", fmt.Errorf("sim: ray: add replica: unknown app %q or node %q (or cluster closed)", app, node)
	}
	c.seq++
	id := fmt.Sprintf("%s#%s#%06s", app, a.cfg.Deployment, strconv.FormatInt(int64(c.seq), 36))
	c.mu.Unlock()
	cfg := a.cfg.Replica
	cfg.ID, cfg.Listen, cfg.GRPCListen = id, "127.0.0.1:0", ""
	sn, err := Start(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("sim: ray: replica %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = sn.Close()
		return "", errors.New("sim: ray: cluster closed")
	}
	c.replicas[id] = &rayReplica{id: id, app: app, nodeID: node, node: sn, state: RayRunning, started: time.Now(), pid: 10000 + c.seq}
	c.notifyLocked()
	return id, nil
}

// RemoveReplica stops replica id the way Serve does: STOPPING (proxies
// send it nothing new), then, once its requests finished or ctx ended, it
// is stopped and leaves the dashboard.
func (c *RayCluster) RemoveReplica(ctx context.Context, id string) error {
	c.mu.Lock()
	r := c.replicas[id]
	if r == nil {
		c.mu.Unlock()
		return fmt.Errorf("sim: ray: no replica %q", id)
	}
	r.state = RayStopping
	c.notifyLocked()
	c.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
wait:
	for r.ongoing.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-t.C:
		}
	}
	_ = r.node.Close()
	c.mu.Lock()
	delete(c.replicas, id)
	c.notifyLocked()
	c.mu.Unlock()
	return nil
}

// SetReplicaState sets replica id's state (STARTING, UPDATING,
// RECOVERING, RUNNING, STOPPING, PENDING_MIGRATION). Only RUNNING
// replicas receive requests.
func (c *RayCluster) SetReplicaState(id, state string) error {
	if !slices.Contains(rayReplicaStates, state) {
		return fmt.Errorf("sim: ray: replica state %q: want one of %v", state, rayReplicaStates)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.replicas[id]
	if r == nil {
		return fmt.Errorf("sim: ray: no replica %q", id)
	}
	r.state = state
	c.notifyLocked()
	return nil
}

// SetAppStatus sets app's status (NOT_STARTED, DEPLOYING, DEPLOY_FAILED,
// RUNNING, UNHEALTHY, DELETING) as the dashboard reports it. Proxies
// keep routing to the app's RUNNING replicas whatever its status, as
// Ray's do.
func (c *RayCluster) SetAppStatus(app, status string) error {
	if !slices.Contains(rayAppStates, status) {
		return fmt.Errorf("sim: ray: app status %q: want one of %v", status, rayAppStates)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.app(app)
	if a == nil {
		return fmt.Errorf("sim: ray: no app %q", app)
	}
	a.status = status
	return nil
}

// SetProxyStatus sets node's proxy status as the dashboard reports it
// (STARTING, HEALTHY, UNHEALTHY, DRAINING, DRAINED). A proxy that is not
// HEALTHY answers /-/healthz with 503 but still forwards requests (a
// draining Ray proxy finishes what it gets).
func (c *RayCluster) SetProxyStatus(node, status string) error {
	if !slices.Contains(rayProxyStates, status) {
		return fmt.Errorf("sim: ray: proxy status %q: want one of %v", status, rayProxyStates)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(node)
	if n == nil || !c.hasProxy(n) {
		return fmt.Errorf("sim: ray: node %q has no proxy", node)
	}
	n.proxyStatus = status
	return nil
}

// StopProxy stops node's proxy (connections refused, in-flight requests
// cut) and reports it UNHEALTHY, as the controller does for a dead proxy
// actor until it restarts it.
func (c *RayCluster) StopProxy(node string) error {
	c.mu.Lock()
	n := c.node(node)
	if n == nil || n.proxy == nil {
		c.mu.Unlock()
		return fmt.Errorf("sim: ray: node %q has no running proxy", node)
	}
	p := n.proxy
	n.proxy, n.proxyStatus = nil, RayUnhealthy
	c.mu.Unlock()
	p.close()
	return nil
}

// StartProxy restarts node's stopped proxy on the same address and
// reports it HEALTHY.
func (c *RayCluster) StartProxy(ctx context.Context, node string) error {
	c.mu.Lock()
	n := c.node(node)
	if n == nil || n.proxy != nil || !c.hasProxy(n) || c.closed {
		c.mu.Unlock()
		return fmt.Errorf("sim: ray: node %q: no stopped proxy to start", node)
	}
	c.mu.Unlock()
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(n.ip, strconv.Itoa(c.httpPort)))
	if err != nil {
		return fmt.Errorf("sim: ray: restart proxy on %s: %w", node, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.proxy != nil || c.closed {
		l.Close()
		return fmt.Errorf("sim: ray: node %q: proxy already running (or cluster closed)", node)
	}
	n.proxy, n.proxyStatus = c.serveProxy(n, l), RayHealthy
	return nil
}

// SetDashboardStatus makes GET /api/serve/applications/ answer code
// (e.g. 500 or 503) instead of the cluster's state; 0 restores it.
func (c *RayCluster) SetDashboardStatus(code int) { c.dashStatus.Store(int32(code)) }

// SetDashboardDown closes the dashboard's listener (connections refused)
// or, with false, listens again on the same address.
func (c *RayCluster) SetDashboardDown(ctx context.Context, down bool) error {
	if down {
		c.dash.stop()
		return nil
	}
	return c.dash.restart(ctx)
}

// Close stops the dashboard, the proxies, the metrics endpoints and every
// replica.
func (c *RayCluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var servers []*rayServer
	for _, n := range c.nodes {
		if n.proxy != nil {
			servers = append(servers, n.proxy)
			n.proxy = nil
		}
		if n.metrics != nil {
			servers = append(servers, n.metrics)
			n.metrics = nil
		}
	}
	replicas := make([]*rayReplica, 0, len(c.replicas))
	for _, r := range c.replicas {
		replicas = append(replicas, r)
	}
	c.notifyLocked()
	c.mu.Unlock()
	if c.dash != nil {
		c.dash.stop()
	}
	for _, s := range servers {
		s.close()
	}
	for _, r := range replicas {
		_ = r.node.Close()
	}
	c.transport.CloseIdleConnections()
}
