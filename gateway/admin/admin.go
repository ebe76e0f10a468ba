// Package admin serves the gateway's admin port: /healthz, /readyz,
// /metrics, the JSON admin API under /admin/ (routes, nodes and node
// actions, weight history, splits, shadows, tenants), the admin page at
// / (one embedded HTML file that reads that API) and /debug/pprof. It
// reads the routing state the forwarding core serves from; it never
// forwards requests.
//
// Security: /, /admin/ and /debug/ answer only to the Host values of the
// Guard (a page on another site cannot read them through a rebound DNS
// name); actions and pprof need the bearer token, actions a JSON body
// too. The page is served with a Content-Security-Policy that allows its
// own inline script and style (by hash) and requests to the admin port
// only. A handler's panic is logged with its stack and answered 500 with
// a JSON body (a connection is only cut when the answer had begun).
//
// Everything here is safe for concurrent use; WeightHistory.Run is the
// only goroutine, owned by its caller.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
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
	// Weights is the nodes' weight history (nil: /admin/weights is
	// empty). Its owner runs it.
	Weights *WeightHistory
	// Tenants returns the API-key store in force; nil (or a nil func)
	// means API keys are off.
	Tenants func() *tenant.Store
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
	mux.Handle("GET /admin/weights", g.hostOnly(http.HandlerFunc(g.adminWeights)))
	mux.Handle("GET /admin/splits", g.hostOnly(http.HandlerFunc(g.adminSplits)))
	mux.Handle("GET /admin/shadows", g.hostOnly(http.HandlerFunc(g.adminShadows)))
	mux.Handle("GET /admin/tenants", g.hostOnly(http.HandlerFunc(g.adminTenants)))
	mux.Handle("GET /{$}", g.hostOnly(http.HandlerFunc(servePage)))
	mux.Handle("POST /admin/nodes/{route}/{node}/{action}", g.hostOnly(g.action(http.HandlerFunc(g.adminNodeAction))))
	mux.Handle("/debug/pprof/", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Index))))
	mux.Handle("/debug/pprof/cmdline", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Cmdline))))
	mux.Handle("/debug/pprof/profile", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Profile))))
	mux.Handle("/debug/pprof/symbol", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Symbol))))
	mux.Handle("/debug/pprof/trace", g.hostOnly(g.pprofOn(http.HandlerFunc(pprof.Trace))))
	return g.recoverPanics(mux)
}

// recoverPanics answers a handler's panic with 500 and a JSON body, and
// logs it with its stack; net/http alone would drop the connection with
// no answer (issue 12, item 7). A panic after the answer began can only
// cut it: the connection is aborted, as is a deliberate
// http.ErrAbortHandler.
func (g *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
				panic(p)
			}
			log := g.Log
			if log == nil {
				log = slog.Default()
			}
			log.Error("gateway: admin: panic serving a request", "method", r.Method, "path", r.URL.Path,
				"panic", p, "stack", string(debug.Stack()))
			if tw.wrote {
				panic(http.ErrAbortHandler)
			}
			clear(w.Header()) // what the handler set (an encoding, a length) is not true of the 500
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error (logged)"})
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter notes whether the answer began.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true // 1xx informational answers may be followed by the real one
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush keeps the writer an http.Flusher for handlers that assert it.
func (w *trackingWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer
// (pprof's profile and trace extend the write deadline through it).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (g *server) tenantStore() *tenant.Store {
	if g.Tenants == nil {
		return nil
	}
	return g.Tenants()
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
	empty := []string{}
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
