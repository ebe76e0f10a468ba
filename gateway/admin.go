package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
)

// adminHandler serves the admin port: /healthz, /readyz, /metrics,
// /admin/routes, /admin/nodes and /debug/pprof.
func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", g.tel.handler())
	mux.HandleFunc("GET /admin/routes", g.adminRoutes)
	mux.HandleFunc("GET /admin/nodes", g.adminNodes)
	mux.HandleFunc("POST /admin/nodes/{route}/{node}/{action}", g.adminNodeAction)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ctJSON)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readyz is 200 when the gateway is not draining and every route has at
// least one node it could pick; otherwise 503 naming the routes without.
func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	if g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "shutting down"})
		return
	}
	var empty []string
	for _, r := range g.state.Load().routes {
		if !routeHasEligible(r) {
			empty = append(empty, r.cfg.Name)
		}
	}
	if len(empty) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "routes_without_nodes": empty})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func routeHasEligible(r *route) bool {
	t := r.table.Load()
	if t == nil {
		return false
	}
	for i := 0; i < t.Ready(); i++ {
		if t.Endpoint(i).Exclusions() == 0 {
			return true
		}
	}
	return false
}

type adminRoute struct {
	Name         string      `json:"name"`
	App          string      `json:"app"`
	Source       string      `json:"source"`
	Stale        bool        `json:"stale,omitempty"`
	Match        MatchConfig `json:"match"`
	Policy       string      `json:"policy"`
	TableVersion uint64      `json:"table_version"`
	Nodes        int         `json:"nodes"`
	Ready        int         `json:"ready"`
	Eligible     int         `json:"eligible"`
	InFlight     int64       `json:"in_flight"`
	Timeouts     Timeouts    `json:"timeouts"`
	Split        bool        `json:"split,omitempty"`
	Shadow       bool        `json:"shadow,omitempty"`
}

func (g *Gateway) adminRoutes(w http.ResponseWriter, _ *http.Request) {
	st := g.state.Load()
	out := make([]adminRoute, 0, len(st.routes))
	for _, r := range st.routes {
		ar := adminRoute{Name: r.cfg.Name, App: r.cfg.App, Source: "static", Match: r.cfg.Match, Policy: r.cfg.Policy,
			InFlight: r.reg.InFlight(), Timeouts: r.cfg.Timeouts, Split: r.cfg.Split != nil, Shadow: r.cfg.Shadow != nil}
		if c, ok := r.src.(*discovery.Client); ok {
			ar.Source = "discovery"
			ar.Stale = c.Stale(r.cfg.App)
		}
		if t := r.table.Load(); t != nil {
			ar.TableVersion, ar.Nodes, ar.Ready = t.Version(), t.Len(), t.Ready()
			for i := 0; i < t.Ready(); i++ {
				if t.Endpoint(i).Exclusions() == 0 {
					ar.Eligible++
				}
			}
		}
		out = append(out, ar)
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out, "in_flight": g.inflight.Load()})
}

type adminNode struct {
	Route            string   `json:"route"`
	ID               string   `json:"id"`
	HTTP             string   `json:"http"`
	GRPC             string   `json:"grpc"`
	State            string   `json:"state"`
	Weight           float64  `json:"weight"`
	InFlight         int64    `json:"in_flight"`
	Breaker          string   `json:"breaker"`
	Excluded         []string `json:"excluded,omitempty"`
	LastHeartbeatAge *float64 `json:"last_heartbeat_age_seconds"`
}

func (g *Gateway) adminNodes(w http.ResponseWriter, _ *http.Request) {
	st := g.state.Load()
	now := time.Now()
	out := []adminNode{}
	for _, r := range st.routes {
		t := r.table.Load()
		if t == nil {
			continue
		}
		meta := r.meta.Load()
		for i := 0; i < t.Len(); i++ {
			e := t.Endpoint(i)
			u := e.Value().(*upstream)
			n := t.Node(i)
			an := adminNode{Route: r.cfg.Name, ID: e.ID(), HTTP: u.httpAddr, GRPC: u.grpcAddr, State: n.State.String(),
				Weight: t.Weight(i), InFlight: e.InFlight(), Breaker: u.cb.State().String()}
			x := e.Exclusions()
			for _, b := range []struct {
				bit  balancer.Exclusion
				name string
			}{{balancer.ExcludeBreaker, "breaker"}, {balancer.ExcludeDraining, "draining"}, {balancer.ExcludeAdmin, "admin"}, {balancer.ExcludeOverload, "overload"}} {
				if x&b.bit != 0 {
					an.Excluded = append(an.Excluded, b.name)
				}
			}
			if meta != nil {
				if m, ok := (*meta)[e.ID()]; ok && !m.lastHeard.IsZero() {
					age := now.Sub(m.lastHeard).Seconds()
					an.LastHeartbeatAge = &age
				}
			}
			out = append(out, an)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
}

// adminNodeAction takes a node out of a route's picks (action "exclude")
// or puts it back ("include") at once, without a rebuild
// (balancer.ExcludeAdmin). The exclusion lives on the node's endpoint and
// is lost if the node leaves the route or the route is rebuilt.
func (g *Gateway) adminNodeAction(w http.ResponseWriter, req *http.Request) {
	route, node, action := req.PathValue("route"), req.PathValue("node"), req.PathValue("action")
	if action != "exclude" && action != "include" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "action must be exclude or include"})
		return
	}
	for _, r := range g.state.Load().routes {
		if r.cfg.Name != route {
			continue
		}
		t := r.table.Load()
		for i := 0; t != nil && i < t.Len(); i++ {
			e := t.Endpoint(i)
			if e.ID() != node {
				continue
			}
			if action == "exclude" {
				e.Exclude(balancer.ExcludeAdmin)
			} else {
				e.Include(balancer.ExcludeAdmin)
			}
			g.log.Info("gateway: admin "+action, "route", route, "node", node)
			writeJSON(w, http.StatusOK, map[string]any{"route": route, "node": node, "excluded": e.Exclusions()&balancer.ExcludeAdmin != 0})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such route or node"})
}
