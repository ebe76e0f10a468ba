package admin

import (
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/health"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// The JSON shapes of the admin API. Field names are snake_case; a
// duration is a Go duration string ("1.5s", "5m0s": time.ParseDuration
// reads it), a time is RFC 3339; a quantity the gateway does not know is
// null, never 0.

// routeJSON is one route in GET /admin/routes.
type routeJSON struct {
	Name   string `json:"name"`
	App    string `json:"app"`
	Source string `json:"source"` // "static" or "discovery"
	// Stale: the discovery source has not answered lately; the route
	// serves its last list.
	Stale        bool         `json:"stale"`
	Match        matchJSON    `json:"match"`
	Policy       string       `json:"policy"`
	TableVersion uint64       `json:"table_version"`
	Nodes        int          `json:"nodes"`
	Ready        int          `json:"ready"`
	Eligible     int          `json:"eligible"`
	Serving      bool         `json:"serving"` // some node can take a request (per-route readiness)
	InFlight     int64        `json:"in_flight"`
	MaxPerNode   int64        `json:"max_per_node"`
	Timeouts     timeoutsJSON `json:"timeouts"`
	Split        bool         `json:"split"`  // details in /admin/splits
	Shadow       bool         `json:"shadow"` // details in /admin/shadows
}

// matchJSON is a route's match conditions; empty ones are left out.
type matchJSON struct {
	Models     []string          `json:"models,omitempty"`
	Host       string            `json:"host,omitempty"`
	PathPrefix string            `json:"path_prefix,omitempty"`
	RayPrefix  string            `json:"ray_prefix,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// timeoutsJSON are a route's per-request deadlines; "off" when disabled.
type timeoutsJSON struct {
	Connect   string `json:"connect"`
	FirstByte string `json:"first_byte"`
	Idle      string `json:"idle"`
	Total     string `json:"total"`
}

func matchOf(m *config.MatchConfig) matchJSON {
	return matchJSON{Models: m.Models, Host: m.Host, PathPrefix: m.PathPrefix, RayPrefix: m.RayPrefix, Headers: m.Headers}
}

func timeoutsOf(t *config.Timeouts) timeoutsJSON {
	off := func(d time.Duration) string {
		if d < 0 {
			return "off"
		}
		return dur(d)
	}
	return timeoutsJSON{Connect: off(t.Connect), FirstByte: off(t.FirstByte), Idle: off(t.Idle), Total: off(t.Total)}
}

// dur writes a duration for people and for time.ParseDuration alike:
// rounded to the millisecond above a second, to the microsecond above a
// millisecond ("1.5s", "312.4ms", "5m0s").
func dur(d time.Duration) string {
	switch {
	case d >= time.Second || d <= -time.Second:
		d = d.Round(time.Millisecond)
	case d >= time.Millisecond || d <= -time.Millisecond:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

func (g *server) adminRoutes(w http.ResponseWriter, _ *http.Request) {
	st := g.Core.Routes()
	out := make([]routeJSON, 0, len(st.Routes()))
	for _, r := range st.Routes() {
		rc := r.Config()
		rj := routeJSON{Name: rc.Name, App: rc.App, Match: matchOf(&rc.Match), Policy: rc.Policy,
			InFlight: r.InFlight(), MaxPerNode: r.MaxPerNode(), Timeouts: timeoutsOf(&rc.Timeouts),
			Split: rc.Split != nil, Shadow: rc.Shadow != nil}
		rj.Source, rj.Stale = g.Source(r)
		if t := r.Table(); t != nil {
			rj.TableVersion, rj.Nodes, rj.Ready = t.Version(), t.Len(), t.Ready()
			for i := 0; i < t.Ready(); i++ {
				if t.Endpoint(i).Exclusions() == 0 {
					rj.Eligible++
				}
			}
		}
		rj.Serving = rj.Eligible > 0
		out = append(out, rj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out, "in_flight": g.Core.InFlight(), "draining": g.Core.Draining()})
}

// nodeJSON is one node of one route in GET /admin/nodes.
type nodeJSON struct {
	Route string `json:"route"`
	ID    string `json:"id"`
	HTTP  string `json:"http"`
	GRPC  string `json:"grpc"`
	// State is the node's state in the table: "ready", "draining" or
	// "offline".
	State    string  `json:"state"`
	Capacity float64 `json:"capacity"`
	// Weight is the node's share weight in the route's current table.
	Weight   float64 `json:"weight"`
	InFlight int64   `json:"in_flight"`
	// Breaker is "closed", "half-open" or "open"; Failing counts the
	// failures reported since the last success.
	Breaker string `json:"breaker"`
	Failing int32  `json:"failing"`
	// Excluded lists why the node is out of picks: "breaker",
	// "draining", "admin", "overload", "health"; empty when eligible.
	Excluded []string `json:"excluded"`
	Engine   string   `json:"engine,omitempty"`
	// Load is the engine load the node's source last reported; null when
	// it reports none (static nodes).
	Load             *loadJSON `json:"load"`
	LastHeartbeatAge *string   `json:"last_heartbeat_age"` // null for static nodes
	// AffinityHorizon is how long the route's affinity index counts what
	// it sent the node: max_age, shortened where the engine's prefix-cache
	// hits fall short of what the gateway predicted (issue 14); omitted
	// when the route's affinity is off.
	AffinityHorizon string `json:"affinity_horizon,omitempty"`
	// Health is what the route's health checks and outlier detection
	// know of the node; null when both are off.
	Health *healthJSON `json:"health"`
}

// loadJSON is a node's engine load; each quantity is null when unknown.
type loadJSON struct {
	Utilisation  *float64 `json:"utilisation"`    // 0..1
	Concurrency  *float64 `json:"concurrency"`    // requests in flight on the engine
	Running      *float64 `json:"running"`        // requests the engine runs
	Waiting      *float64 `json:"waiting"`        // requests queued in the engine
	KVCacheUsage *float64 `json:"kv_cache_usage"` // 0..1
	// The engine's cumulative prefix-cache hits and queries (tokens), or
	// its hit rate 0..1; and its LoRA adapters (issue 14).
	PrefixCacheHits    *float64  `json:"prefix_cache_hits"`
	PrefixCacheQueries *float64  `json:"prefix_cache_queries"`
	PrefixCacheHitRate *float64  `json:"prefix_cache_hit_rate"`
	LoRA               *loraJSON `json:"lora,omitempty"`
	Readiness          string    `json:"readiness,omitempty"`
	Age                string    `json:"age,omitempty"` // since the sample was taken
}

// loraJSON is the LoRA adapters a node's engine reports.
type loraJSON struct {
	Running []string `json:"running"`
	Waiting []string `json:"waiting"`
}

func loadOf(l *discovery.Load, now time.Time) *loadJSON {
	v := func(x discovery.Value) *float64 {
		if f, ok := x.Get(); ok {
			return &f
		}
		return nil
	}
	out := &loadJSON{Utilisation: v(l.Utilisation), Concurrency: v(l.Concurrency), Running: v(l.Running),
		Waiting: v(l.Waiting), KVCacheUsage: v(l.KVCacheUsage), PrefixCacheHits: v(l.PrefixCacheHits),
		PrefixCacheQueries: v(l.PrefixCacheQueries), PrefixCacheHitRate: v(l.PrefixCacheHitRate)}
	if l.LoRA.Known() {
		out.LoRA = &loraJSON{Running: l.LoRA.Running(), Waiting: l.LoRA.Waiting()}
	}
	if l.Readiness != discovery.ReadinessUnknown {
		out.Readiness = l.Readiness.String()
	}
	known := out.Utilisation != nil || out.Concurrency != nil || out.Running != nil || out.Waiting != nil ||
		out.KVCacheUsage != nil || out.Readiness != "" || out.PrefixCacheHits != nil || out.PrefixCacheQueries != nil ||
		out.PrefixCacheHitRate != nil || out.LoRA != nil
	if !known {
		return nil
	}
	if !l.SampledAt.IsZero() {
		out.Age = dur(max(now.Sub(l.SampledAt), 0))
	}
	return out
}

// healthJSON is health.Status with durations as strings.
type healthJSON struct {
	Watch               string     `json:"watch"`
	Check               string     `json:"check,omitempty"`
	Rule                string     `json:"rule,omitempty"`
	NoHealthEndpoint    string     `json:"no_health_endpoint,omitempty"`
	LastProbe           string     `json:"last_probe,omitempty"`
	Healthy             bool       `json:"healthy"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Ejected             bool       `json:"ejected"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	Reason              string     `json:"reason,omitempty"`
	Detail              string     `json:"detail,omitempty"`
	Capped              string     `json:"capped,omitempty"`
	Excluded            bool       `json:"excluded"`
	Held                bool       `json:"held"`
	MeanTTFB            string     `json:"mean_ttfb"`  // "0s" with too few answers
	SilentFor           string     `json:"silent_for"` // while requests wait on the node
}

func healthOf(s *health.Status) *healthJSON {
	return &healthJSON{
		Watch: s.Watch, Check: s.Check, Rule: s.Rule, NoHealthEndpoint: s.NoHealthEndpoint, LastProbe: s.LastProbe,
		Healthy: s.Healthy, ConsecutiveFailures: s.ConsecutiveFailures, Ejected: s.Ejected, EjectedUntil: s.EjectedUntil,
		Reason: s.Reason, Detail: s.Detail, Capped: s.Capped, Excluded: s.Excluded, Held: s.Held,
		MeanTTFB:  dur(time.Duration(s.MeanTTFBSeconds * float64(time.Second))),
		SilentFor: dur(time.Duration(s.SilentSeconds * float64(time.Second))),
	}
}

// exclusions names the bits of x in a fixed order.
func exclusions(x balancer.Exclusion) []string {
	out := []string{}
	for _, b := range []struct {
		bit  balancer.Exclusion
		name string
	}{{balancer.ExcludeBreaker, "breaker"}, {balancer.ExcludeDraining, "draining"}, {balancer.ExcludeAdmin, "admin"}, {balancer.ExcludeOverload, "overload"}, {balancer.ExcludeHealth, "health"}} {
		if x&b.bit != 0 {
			out = append(out, b.name)
		}
	}
	return out
}

func (g *server) adminNodes(w http.ResponseWriter, _ *http.Request) {
	st := g.Core.Routes()
	now := time.Now()
	out := []nodeJSON{}
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
			nj := nodeJSON{Route: r.Name(), ID: e.ID(), HTTP: u.Addr().HTTP, GRPC: u.Addr().GRPC, State: n.State.String(),
				Capacity: n.Capacity, Weight: t.Weight(i), InFlight: e.InFlight(), Breaker: u.Breaker(), Failing: u.Failing(),
				Excluded: exclusions(e.Exclusions())}
			if hs, ok := r.Health().Status(e.ID()); ok {
				nj.Health = healthOf(&hs)
			}
			if aff := r.Affinity(); aff != nil {
				if h := aff.Horizon(e); h > 0 {
					nj.AffinityHorizon = dur(h)
				}
			}
			if m, ok := meta[e.ID()]; ok {
				nj.Engine = m.Engine()
				nj.Load = loadOf(&m.Load, now)
				if !m.LastHeard.IsZero() {
					age := dur(max(now.Sub(m.LastHeard), 0))
					nj.LastHeartbeatAge = &age
				}
			}
			out = append(out, nj)
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
		if e := endpointOf(r, node); e != nil {
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

func endpointOf(r *route.Route, id string) *balancer.Endpoint {
	t := r.Table()
	for i := 0; t != nil && i < t.Len(); i++ {
		if e := t.Endpoint(i); e.ID() == id {
			return e
		}
	}
	return nil
}
