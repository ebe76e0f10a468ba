package ray

import (
	"net"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/rayserve"
)

// Ray Serve load metrics, as Ray exports them (the "ray_" prefix is the
// exporter's). Sources: ray-project/ray python/ray/serve/_private/replica.py
// registers the gauge "serve_replica_processing_queries" ("The current
// number of queries being processed.", tags deployment, replica,
// application); python/ray/serve/_private/router.py registers the gauge
// "serve_deployment_queued_queries" ("The current number of queries to
// this deployment waiting to be assigned to a replica.", tags deployment,
// application, handle, actor_id). Both are in the metrics list of
// python/ray/serve/tests/test_metrics.py and docs/serve/monitoring.
const (
	MetricOngoing = "ray_serve_replica_processing_queries"
	MetricQueued  = "ray_serve_deployment_queued_queries"
)

// nodeLoad is one node's scraped metrics.
type nodeLoad struct {
	metrics engines.Metrics
}

// sum adds the samples of name for app (and deployment, when set).
func (l nodeLoad) sum(name, app, deployment string) (float64, bool) {
	if !l.metrics.Has(name) {
		return 0, false
	}
	var t float64
	for _, s := range l.metrics.Samples(name) {
		if s.Labels["application"] != app || (deployment != "" && s.Labels["deployment"] != deployment) || s.Value < 0 {
			continue
		}
		t += s.Value
	}
	return t, true
}

// entry is everything one node of an app's list is built from; entries
// compare with == to detect changes.
type entry struct {
	nodeID, http, grpc string
	// replicas counted (RUNNING, of the ingress deployment where known).
	replicas int
	// cards held by those replicas and their model ("" unknown or CPU).
	cards float64
	model string
	// capacity is Σ replicas × units × coefficient.
	capacity float64
	// running and waiting from ray_serve_* when loadKnown.
	running, waiting float64
	loadKnown        bool
}

// plan works out app's entries: one per node with a HEALTHY proxy that
// hosts RUNNING replicas (EveryNode), or the head's proxy alone
// (HeadOnly). Called with pollMu held (warnOnce).
func (s *Source) plan(c rayserve.Cluster, app rayserve.App, loads map[string]nodeLoad) map[string]entry {
	deps := app.Deployments
	if app.Ingress != "" {
		for _, d := range app.Deployments {
			if d.Name == app.Ingress {
				deps = []rayserve.Deployment{d}
			}
		}
	}
	ingress := ""
	if len(deps) == 1 && app.Ingress != "" {
		ingress = app.Ingress
	}
	perNode := map[string]*entry{}
	total := entry{}
	for _, d := range deps {
		units, accel := 1.0, d.NumGPUs > 0 || d.NPUs > 0
		if accel {
			units = d.NumGPUs + d.NPUs
		}
		for _, r := range d.Replicas {
			if r.State != "RUNNING" {
				continue
			}
			e := perNode[r.NodeID]
			if e == nil {
				e = &entry{nodeID: r.NodeID}
				perNode[r.NodeID] = e
			}
			coef, model := 1.0, ""
			if accel {
				coef, model = s.coefficient(app.Name, d, r)
			}
			e.replicas++
			total.replicas++
			e.capacity += units * coef
			total.capacity += units * coef
			if accel {
				e.cards += units
				total.cards += units
				e.model = model
				total.model = model
			}
		}
	}
	proxies := map[string]rayserve.Proxy{}
	for _, p := range c.Proxies {
		proxies[p.NodeID] = p
	}
	grpc := func(p rayserve.Proxy) string {
		if c.GRPCServicers > 0 {
			return p.GRPCAddr
		}
		return ""
	}
	loadOf := func(e *entry, nodeID string) {
		l, ok := loads[nodeID]
		if !ok {
			return
		}
		run, ok1 := l.sum(MetricOngoing, app.Name, ingress)
		wait, ok2 := l.sum(MetricQueued, app.Name, ingress)
		if ok1 || ok2 {
			e.running, e.waiting, e.loadKnown = run, wait, true
		}
	}
	out := map[string]entry{}
	if total.replicas == 0 {
		return out
	}
	switch c.ProxyLocation {
	case "Disabled":
		s.warnOnce("disabled", "ray: proxy_location is Disabled: no HTTP proxy to route to", "dashboard", redact(s.cfg.Dashboard))
		return out
	case "HeadOnly":
		head, ok := proxies[c.ControllerNodeID]
		if !ok && len(c.Proxies) == 1 {
			head, ok = c.Proxies[0], true
		}
		if !ok || !head.Healthy() {
			s.warnOnce("nohead:"+app.Name, "ray: HeadOnly cluster without a HEALTHY head proxy: no node to route to", "app", app.Name)
			return out
		}
		e := total
		e.nodeID, e.http, e.grpc = head.NodeID, head.HTTPAddr, grpc(head)
		// Load: replicas run everywhere, requests queue at the head.
		var run, wait float64
		known := len(loads) > 0
		for id := range perNode {
			l, ok := loads[id]
			if !ok {
				known = false
				continue
			}
			r, _ := l.sum(MetricOngoing, app.Name, ingress)
			run += r
		}
		if l, ok := loads[head.NodeID]; ok {
			wait, _ = l.sum(MetricQueued, app.Name, ingress)
		} else {
			known = false
		}
		e.running, e.waiting, e.loadKnown = run, wait, known
		out[e.nodeID] = e
		return out
	}
	// EveryNode (and unknown locations): the proxies next to the replicas.
	for id, e := range perNode {
		p, ok := proxies[id]
		if !ok || !p.Healthy() {
			continue
		}
		e.http, e.grpc = p.HTTPAddr, grpc(p)
		loadOf(e, id)
		out[id] = *e
	}
	if len(out) > 0 {
		return out
	}
	// No node with replicas has a healthy proxy; any proxy forwards to
	// any replica, so route through the healthy ones, sharing the weight.
	var healthy []rayserve.Proxy
	for _, p := range c.Proxies {
		if p.Healthy() {
			healthy = append(healthy, p)
		}
	}
	if len(healthy) == 0 {
		s.warnOnce("noproxy:"+app.Name, "ray: no HEALTHY proxy for the app: no node to route to", "app", app.Name)
		return out
	}
	for _, p := range healthy {
		e := entry{nodeID: p.NodeID, http: p.HTTPAddr, grpc: grpc(p), capacity: total.capacity / float64(len(healthy))}
		loadOf(&e, p.NodeID)
		out[p.NodeID] = e
	}
	return out
}

// coefficient is the capacity coefficient of one accelerated replica:
// the card model from Config.Accelerators (node id, then node IP), else
// the deployment's accelerator_type, looked up in the capacity table. An
// unknown model (none given, or not in the table) gets the table's
// default coefficient, so nodes weigh by card count; it is logged once.
func (s *Source) coefficient(app string, d rayserve.Deployment, r rayserve.Replica) (float64, string) {
	model := s.cfg.Accelerators[r.NodeID]
	if model == "" {
		model = s.cfg.Accelerators[r.NodeIP]
	}
	if model == "" {
		model = d.AcceleratorType
	}
	if model == "" {
		s.warnOnce("nomodel:"+app+"/"+d.Name, "ray: card model unknown (no accelerator_type, no ray.accelerators entry): weighting by card count",
			"app", app, "deployment", d.Name, "coefficient", s.cfg.Capacity.Default)
		return s.cfg.Capacity.Default, ""
	}
	m := s.cfg.Capacity.Lookup(model)
	if !m.Known {
		s.warnOnce("unknownmodel:"+model, "ray: "+m.Warning, "app", app)
	}
	return m.Coefficient(), model
}

// newNode builds the discovery.Node of one entry: the ONE place a Ray
// entry becomes a node (the discovery wire types may change; adapt here).
func newNode(app string, e entry, now time.Time, version uint64) *discovery.Node {
	n := &discovery.Node{
		ID:          e.nodeID,
		App:         app,
		Addresses:   map[string]string{"http": e.http},
		Engine:      rayserve.Name,
		Accelerator: discovery.Accelerator{Model: e.model, Count: min(int(e.cards+0.5), discovery.MaxCards)},
		Capacity:    min(e.capacity, discovery.MaxCapacity),
		State:       discovery.StateReady,
		LastHeard:   now,
		Version:     version,
	}
	if e.grpc != "" {
		n.Addresses["grpc"] = e.grpc
	}
	if e.loadKnown {
		n.Load = discovery.Load{Running: discovery.Known(e.running), Waiting: discovery.Known(e.waiting),
			Concurrency: discovery.Known(min(e.running+e.waiting, discovery.MaxConcurrency)), SampledAt: now}
	}
	return n
}

func joinHostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
