package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// RayProxyHeader names the node whose proxy answered.
const RayProxyHeader = "X-Sim-Ray-Proxy"

// rayServer is one HTTP server of the cluster (a proxy or a metrics
// endpoint) with the goroutine that serves it.
type rayServer struct {
	srv  *http.Server
	done chan struct{}
}

func newRayServer(l net.Listener, h http.Handler) *rayServer {
	s := &rayServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	return s
}

// close closes the listener and every connection, then waits for Serve.
func (s *rayServer) close() {
	_ = s.srv.Close()
	<-s.done
}

// serveProxy starts node n's Serve HTTP proxy on l.
func (c *RayCluster) serveProxy(n *rayNode, l net.Listener) *rayServer {
	return newRayServer(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.proxy(n, w, r) }))
}

// proxy is a Ray Serve HTTP proxy: /-/healthz, /-/routes, and every other
// path routed by the longest matching route_prefix to a RUNNING replica
// of that app, preferring replicas on this node (as Ray's request router
// prefers same-node replicas, falling back to others when they are full),
// with at most max_ongoing_requests per replica; beyond that the request
// queues here until a replica frees.
func (c *RayCluster) proxy(n *rayNode, w http.ResponseWriter, r *http.Request) {
	w.Header().Set(RayProxyHeader, n.id)
	switch r.URL.Path {
	case "/-/healthz":
		c.mu.Lock()
		st := n.proxyStatus
		c.mu.Unlock()
		if st != RayHealthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "This node is being drained.")
			return
		}
		fmt.Fprint(w, "success")
		return
	case "/-/routes":
		routes := map[string]string{}
		c.mu.Lock()
		for _, a := range c.apps {
			routes[a.cfg.RoutePrefix] = a.cfg.Name
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(routes)
		return
	}
	app := c.route(r.URL.Path)
	if app == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "Path '%s' not found. Ping http://.../-/routes for available routes.", r.URL.Path)
		return
	}
	// Read the whole request first, as Ray's proxy does: net/http closes
	// an HTTP/1.1 request body once the handler writes the response, and
	// the transport may still be reading it when the replica answers.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	rep, err := c.assign(r, n, app)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer c.unassign(rep)
	target, _ := url.Parse(rep.node.URL())
	prefix := app.cfg.RoutePrefix
	rp := &httputil.ReverseProxy{
		Transport:     c.transport,
		FlushInterval: -1, // stream SSE as it comes
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			p := pr.In.URL.Path
			if prefix != "/" {
				p = strings.TrimPrefix(p, prefix)
			}
			if p == "" || p[0] != '/' {
				p = "/" + p
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath = p, ""
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "replica "+rep.id+": "+err.Error(), http.StatusInternalServerError)
		},
	}
	rp.ServeHTTP(w, r)
}

// route finds the app whose route_prefix is the longest that matches
// path ("/a" matches "/a", "/a/" and "/a/b", not "/ab"; "/" matches all).
func (c *RayCluster) route(path string) *rayApp {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *rayApp
	for _, a := range c.apps {
		p := a.cfg.RoutePrefix
		if p != "/" && path != p && !strings.HasPrefix(path, p+"/") {
			continue
		}
		if best == nil || len(p) > len(best.cfg.RoutePrefix) {
			best = a
		}
	}
	return best
}

// assign picks a RUNNING replica of app for a request arriving at node n:
// the one with the fewest ongoing requests among n's replicas below
// max_ongoing_requests, else among all; while every replica is at the
// limit it waits in n's queue for app, until the request's context ends.
func (c *RayCluster) assign(r *http.Request, n *rayNode, app *rayApp) (*rayReplica, error) {
	queued := false
	q := n.queued[app.cfg.Name]
	defer func() {
		if queued {
			q.Add(-1)
		}
	}()
	for {
		c.mu.Lock()
		var local, all []*rayReplica
		for _, rep := range c.replicas {
			if rep.app != app.cfg.Name || rep.state != RayRunning {
				continue
			}
			all = append(all, rep)
			if rep.nodeID == n.id {
				local = append(local, rep)
			}
		}
		changed, closed := c.changed, c.closed
		c.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("cluster stopped")
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("no RUNNING replica of application %q", app.cfg.Name)
		}
		limit := int64(app.cfg.MaxOngoingRequests)
		if rep := pick(local, limit); rep != nil {
			return rep, nil
		}
		if rep := pick(all, limit); rep != nil {
			return rep, nil
		}
		if !queued {
			queued = true
			q.Add(1)
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

// pick takes the replica with the fewest ongoing requests below limit,
// counting the request; nil if all are at the limit.
func pick(reps []*rayReplica, limit int64) *rayReplica {
	sort.Slice(reps, func(i, j int) bool {
		oi, oj := reps[i].ongoing.Load(), reps[j].ongoing.Load()
		return oi < oj || (oi == oj && reps[i].id < reps[j].id)
	})
	for _, rep := range reps {
		if tryIncBelow(&rep.ongoing, limit) {
			return rep
		}
	}
	return nil
}

// tryIncBelow adds one to v if it is below limit.
func tryIncBelow(v *atomic.Int64, limit int64) bool {
	for {
		o := v.Load()
		if o >= limit {
			return false
		}
		if v.CompareAndSwap(o, o+1) {
			return true
		}
	}
}

func (c *RayCluster) unassign(rep *rayReplica) {
	rep.ongoing.Add(-1)
	c.mu.Lock()
	c.notifyLocked()
	c.mu.Unlock()
}

// serveMetrics starts node n's metrics export endpoint on l: GET /metrics
// with the ray_serve_* series of the replicas and the proxy on n.
//
// Names and labels from ray-project/ray python/ray/serve/_private:
// replica.py registers the gauge serve_replica_processing_queries (tags
// deployment, replica, application: requests the replica is processing)
// and router.py the gauge serve_deployment_queued_queries (tags
// deployment, application, handle, actor_id: requests waiting in that
// router for a replica); Ray's exporter prefixes them with "ray_".
func (c *RayCluster) serveMetrics(n *rayNode, l net.Listener) *rayServer {
	return newRayServer(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		e := expo{w}
		c.mu.Lock()
		var reps []*rayReplica
		for _, rep := range c.replicas {
			if rep.nodeID == n.id {
				reps = append(reps, rep)
			}
		}
		apps := append([]*rayApp(nil), c.apps...)
		hasProxy := n.proxy != nil
		c.mu.Unlock()
		sort.Slice(reps, func(i, j int) bool { return reps[i].id < reps[j].id })
		e.family("ray_serve_replica_processing_queries", "gauge", "The current number of queries being processed.")
		for _, rep := range reps {
			a := c.appCfg(apps, rep.app)
			e.sample("ray_serve_replica_processing_queries", float64(rep.ongoing.Load()),
				"application", rep.app, "deployment", a.Deployment, "replica", rep.id, "ip", n.ip)
		}
		if hasProxy {
			e.family("ray_serve_deployment_queued_queries", "gauge", "The current number of queries to this deployment waiting to be assigned to a replica.")
			for _, a := range apps {
				e.sample("ray_serve_deployment_queued_queries", float64(n.queued[a.cfg.Name].Load()),
					"application", a.cfg.Name, "deployment", a.cfg.Deployment, "handle", "proxy", "actor_id", "proxy-"+n.id, "ip", n.ip)
			}
		}
	}))
}

func (c *RayCluster) appCfg(apps []*rayApp, name string) RayAppConfig {
	for _, a := range apps {
		if a.cfg.Name == name {
			return a.cfg
		}
	}
	return RayAppConfig{}
}
