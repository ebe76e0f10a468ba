// Package admin serves the gateway's admin port: /healthz, /readyz,
// /metrics, the JSON admin API (/admin/routes, /admin/nodes and node
// actions) and /debug/pprof. It reads the routing state the forwarding
// core serves from; it never forwards requests.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/health"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Deps are what the admin port reads.
type Deps struct {
	Core    *forward.Core
	Metrics http.Handler
	// Source names a route's node source and says whether its view is
	// stale.
	Source func(r *route.Route) (name string, stale bool)
	// Guard returns the admin port's security settings in force (they
	// change with reloads).
	Guard func() *Guard
	Log   *slog.Logger
}

// Guard is the admin port's security: the token of actions and pprof,
// whether pprof is served, and the Host values the admin API accepts.
type Guard struct {
	Token string
	PProf bool
	Hosts map[string]bool
}

// NewGuard builds a Guard from the config; listenAddr is the admin
// listener's host:port (its host is allowed by default).
func NewGuard(ac *config.AdminConfig, token, listenAddr string) *Guard {
	g := &Guard{Token: token, PProf: ac.PProf, Hosts: map[string]bool{}}
	hosts := ac.AllowedHosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(listenAddr); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		g.Hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return g
}

type server struct{ Deps }

// Handler serves the admin port.
func Handler(d Deps) http.Handler {
	g := &server{d}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", d.Metrics)
	mux.Handle("GET /admin/routes", g.hostOnly(http.HandlerFunc(g.adminRoutes)))
	mux.Handle("GET /admin/nodes", g.hostOnly(http.HandlerFunc(g.adminNodes)))
	mux.Handle("POST /admin/nodes/{route}/{node}/{action}", g.hostOnly(g.action(http.HandlerFunc(g.adminNodeAction))))
	mux.Handle("/debug/pprof/", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Index))))
	mux.Handle("/debug/pprof/cmdline", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Cmdline))))
	mux.Handle("/debug/pprof/profile", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Profile))))
	mux.Handle("/debug/pprof/symbol", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Symbol))))
	mux.Handle("/debug/pprof/trace", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Trace))))
	return mux
}

// hostOnly refuses a Host outside the guard's list: a page on another
// site cannot reach the admin API through a rebound DNS name.
func (g *server) hostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !g.Guard().Hosts[strings.ToLower(strings.Trim(host, "[]"))] {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "host not allowed on the admin API (admin.allowed_hosts)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized checks the bearer token; it answers the refusal itself.
func (g *server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := g.Guard().Token
	if tok == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin actions are disabled: set admin.token_file (or --admin-token-file)"})
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard-admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token missing or wrong"})
		return false
	}
	return true
}

// action guards a state-changing request: the token, and a JSON body type
// (a cross-site form post cannot send one without a preflight).
func (g *server) action(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.authorized(w, r) {
			return
		}
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "admin actions take Content-Type: application/json"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pprofOn serves pprof only when admin.pprof is on, with the token.
func (g *server) pprofOn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Guard().PProf {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "pprof is off (admin.pprof)"})
			return
		}
		if !g.authorized(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readyz is 200 while the gateway serves, 503 once it drains.
func (g *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if g.Core.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "shutting down"})
		return
	}
	// Ready means the gateway can serve: config loaded, listeners up, not
	// draining. A route without a node is that route's problem, not a
	// reason to take the whole gateway out of its Service: it is named
	// here (and in /admin/routes) but does not fail readiness.
	var empty []string
	for _, r := range g.Core.Routes().Routes() {
		if !routeHasEligible(r) {
			empty = append(empty, r.Name())
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "routes_without_nodes": empty})
}

func routeHasEligible(r *route.Route) bool {
	t := r.Table()
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
	Name         string             `json:"name"`
	App          string             `json:"app"`
	Source       string             `json:"source"`
	Stale        bool               `json:"stale,omitempty"`
	Match        config.MatchConfig `json:"match"`
	Policy       string             `json:"policy"`
	TableVersion uint64             `json:"table_version"`
	Nodes        int                `json:"nodes"`
	Ready        int                `json:"ready"`
	Eligible     int                `json:"eligible"`
	InFlight     int64              `json:"in_flight"`
	Timeouts     config.Timeouts    `json:"timeouts"`
	Split        bool               `json:"split,omitempty"`
	Shadow       bool               `json:"shadow,omitempty"`
}

func (g *server) adminRoutes(w http.ResponseWriter, _ *http.Request) {
	st := g.Core.Routes()
	out := make([]adminRoute, 0, len(st.Routes()))
	for _, r := range st.Routes() {
		rc := r.Config()
		ar := adminRoute{Name: rc.Name, App: rc.App, Match: rc.Match, Policy: rc.Policy,
			InFlight: r.InFlight(), Timeouts: rc.Timeouts, Split: rc.Split != nil, Shadow: rc.Shadow != nil}
		ar.Source, ar.Stale = g.Source(r)
		if t := r.Table(); t != nil {
			ar.TableVersion, ar.Nodes, ar.Ready = t.Version(), t.Len(), t.Ready()
			for i := 0; i < t.Ready(); i++ {
				if t.Endpoint(i).Exclusions() == 0 {
					ar.Eligible++
				}
			}
		}
		out = append(out, ar)
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out, "in_flight": g.Core.InFlight()})
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
	// Health is what the route's health checks and outlier detection
	// know of the node (absent when both are off), "watch" saying whether
	// it has a health endpoint or is watched by outlier detection alone.
	Health *health.Status `json:"health,omitempty"`
}

func (g *server) adminNodes(w http.ResponseWriter, _ *http.Request) {
	st := g.Core.Routes()
	now := time.Now()
	out := []adminNode{}
	for _, r := range st.Routes() {
		t := r.Table()
		if t == nil {
			continue
		}
		meta := r.Meta()
		for i := 0; i < t.Len(); i++ {
			e := t.Endpoint(i)
			u := e.Value().(*upstream.Node)
			n := t.Node(i)
			an := adminNode{Route: r.Name(), ID: e.ID(), HTTP: u.Addr().HTTP, GRPC: u.Addr().GRPC, State: n.State.String(),
				Weight: t.Weight(i), InFlight: e.InFlight(), Breaker: u.Breaker()}
			x := e.Exclusions()
			for _, b := range []struct {
				bit  balancer.Exclusion
				name string
			}{{balancer.ExcludeBreaker, "breaker"}, {balancer.ExcludeDraining, "draining"}, {balancer.ExcludeAdmin, "admin"}, {balancer.ExcludeOverload, "overload"}, {balancer.ExcludeHealth, "health"}} {
				if x&b.bit != 0 {
					an.Excluded = append(an.Excluded, b.name)
				}
			}
			if hs, ok := r.Health().Status(e.ID()); ok {
				an.Health = &hs
			}
			if meta != nil {
				if m, ok := meta[e.ID()]; ok && !m.LastHeard.IsZero() {
					age := now.Sub(m.LastHeard).Seconds()
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
func (g *server) adminNodeAction(w http.ResponseWriter, req *http.Request) {
	routeName, node, action := req.PathValue("route"), req.PathValue("node"), req.PathValue("action")
	if action != "exclude" && action != "include" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "action must be exclude or include"})
		return
	}
	if r := g.Core.Routes().Route(routeName); r != nil {
		t := r.Table()
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
			g.Log.Info("gateway: admin "+action, "route", routeName, "node", node)
			writeJSON(w, http.StatusOK, map[string]any{"route": routeName, "node": node, "excluded": e.Exclusions()&balancer.ExcludeAdmin != 0})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such route or node"})
}
