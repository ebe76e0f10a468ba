package route

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/health"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Set is one configuration's immutable routing state: its routes and the
// indexes that match requests to them. The gateway swaps it whole on
// reload.
type Set struct {
	cfg        *config.Config
	routes     []*Route
	byName     map[string]*Route
	byModel    map[string]*Route
	byPrefix   []adapterPrefix // match.adapters prefixes of model-only routes, in config order
	ordered    []*Route        // routes that are not model-only, in config order
	fallback   *Route          // the "*" route
	models     []string        // sorted, for 404 answers
	needBody   bool            // some route matches on the model or streams on "stream"
	modelsJSON []byte          // GET /v1/models
	retryAfter []byte
	// shadows and splits keep the mirrors' and splitters' counters by
	// route name; each Set hands them on to the next (NewSet's old), so
	// they live as long as the gateway and a reload does not reset them.
	// Made with the first route that needs them.
	shadows *shadow.Registry
	splits  *split.Registry
}

// Deps are what a Set's routes need from the gateway.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Sender sends shadow copies (the forwarding core).
	Sender shadow.Sender
}

// NewSet builds the routing state of cfg (defaults applied, validated). A
// route of old whose config, limits, weight period and node source did not
// change is carried over whole (table, endpoints, breakers, pools, owner
// goroutine); routes with a split or shadow are always rebuilt, and keep
// adding to the counters of old's routes of the same name. old must be
// the Set in force (nil only for the first): the counters pass from
// each Set to the next. Route owners start with Start.
func NewSet(cfg *config.Config, old *Set, d Deps) (*Set, error) {
	st := &Set{cfg: cfg, byName: map[string]*Route{}, byModel: map[string]*Route{}}
	if old != nil {
		st.shadows, st.splits = old.shadows, old.splits
	}
	st.retryAfter = fmt.Appendf(nil, "%d", max(int(cfg.Limits.RetryAfter.Seconds()+0.5), 1))
	hm, err := health.NewMetrics(d.Metrics.Meter())
	if err != nil {
		return nil, err
	}
	for i := range cfg.Routes {
		rc := cfg.Routes[i]
		r := old.reusable(cfg, &rc)
		if r == nil {
			var err error
			if r, err = New(rc, &st.cfg.Limits, d.Metrics, hm, d.Log); err != nil {
				return nil, fmt.Errorf("gateway: route %q: %w", rc.Name, err)
			}
		}
		st.routes = append(st.routes, r)
		st.byName[rc.Name] = r
		m := &rc.Match
		switch {
		case len(m.Models) == 1 && m.Models[0] == "*":
			st.fallback = r
			st.needBody = true
		case onlyModels(m):
			for _, mod := range m.Models {
				st.byModel[mod] = r
				st.models = append(st.models, mod)
			}
			for mod := range r.adapters.exact {
				st.byModel[mod] = r
				st.models = append(st.models, mod)
			}
			for _, p := range r.adapters.prefixes {
				st.byPrefix = append(st.byPrefix, adapterPrefix{p, r})
			}
			st.needBody = true
		default:
			st.ordered = append(st.ordered, r)
			if len(m.Models) > 0 || r.adapters.any() {
				st.needBody = true
				st.models = append(st.models, m.Models...)
				for mod := range r.adapters.exact {
					st.models = append(st.models, mod)
				}
			}
		}
		if r.stream == streamAuto {
			st.needBody = true
		}
	}
	slices.Sort(st.models)
	st.models = slices.Compact(st.models)
	if err := st.wireExtras(d); err != nil {
		st.CloseExtras()
		if st.shadows != nil && (old == nil || old.shadows != st.shadows) {
			// Made for this Set: nobody will hand it on, and a second
			// registry on the same meter would export its series twice.
			_ = st.shadows.Close()
		}
		return nil, err
	}
	st.modelsJSON = ModelsJSON(st.models)
	return st, nil
}

// ModelsJSON is the OpenAI list of models (GET /v1/models).
func ModelsJSON(models []string) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range models {
		list.Data = append(list.Data, model{ID: m, Object: "model", OwnedBy: "switchyard"})
	}
	b, _ := json.Marshal(list)
	return b
}

func onlyModels(m *config.MatchConfig) bool {
	return len(m.Models)+len(m.Adapters) > 0 && m.Host == "" && m.PathPrefix == "" && m.RayPrefix == "" && len(m.Headers) == 0
}

// adapterPrefix is a match.adapters entry ending in "*" of a model-only
// route.
type adapterPrefix struct {
	prefix string
	r      *Route
}

// reusable returns the route of st that can serve rc unchanged, or nil.
func (st *Set) reusable(cfg *config.Config, rc *config.RouteConfig) *Route {
	if st == nil || rc.Split != nil || rc.Shadow != nil || rc.Fallback != nil || st.cfg.WeightPeriod != cfg.WeightPeriod {
		return nil
	}
	r := st.byName[rc.Name]
	if r == nil || *r.lim != cfg.Limits || !reflect.DeepEqual(r.cfg, *rc) {
		return nil
	}
	return r
}

// wireExtras builds the splitters, mirrors and fallbacks of st's routes.
// Targets name a route (by name) or a model.
func (st *Set) wireExtras(d Deps) error {
	meter := d.Metrics.Meter()
	for _, r := range st.routes {
		if sc := r.cfg.Split; sc != nil {
			if st.splits == nil {
				st.splits = split.NewRegistry()
			}
			s, err := split.New(*sc, split.WithRoute(r.cfg.Name), split.WithMeter(meter), split.WithRegistry(st.splits))
			if err != nil {
				return fmt.Errorf("gateway: route %q: split: %w", r.cfg.Name, err)
			}
			r.splitter = s
			r.variants = make([]*Route, s.Len())
			for i := range r.variants {
				v := s.Variant(i)
				if r.variants[i] = st.Target(v.Target); r.variants[i] == nil {
					return fmt.Errorf("gateway: route %q: split variant %q: no route or model %q", r.cfg.Name, v.Name, v.Target)
				}
			}
		}
		if fc := r.cfg.Fallback; fc != nil {
			if r.fallback = st.Target(fc.Target); r.fallback == nil || r.fallback == r {
				return fmt.Errorf("gateway: route %q: fallback: no other route or model %q", r.cfg.Name, fc.Target)
			}
			r.fbOn = 0
			for _, on := range fc.On {
				switch on {
				case config.Fallback5xx:
					r.fbOn |= 1 << Fallback5xx
				case config.Fallback429:
					r.fbOn |= 1 << Fallback429
				case config.FallbackSaturated:
					r.fbOn |= 1 << FallbackSaturated
				}
			}
		}
		if sc := r.cfg.Shadow; sc != nil {
			if st.shadows == nil {
				reg, err := shadow.NewRegistry(meter)
				if err != nil {
					return fmt.Errorf("gateway: route %q: shadow: %w", r.cfg.Name, err)
				}
				st.shadows = reg
			}
			m, err := shadow.New(context.Background(), *sc, d.Sender, shadow.WithRoute(r.cfg.Name), shadow.WithRegistry(st.shadows), shadow.WithLogger(d.Log))
			if err != nil {
				return fmt.Errorf("gateway: route %q: shadow: %w", r.cfg.Name, err)
			}
			r.mirror = m
		}
	}
	return nil
}

// CloseExtras closes the mirrors of a retired Set: each stops taking
// copies, finishes or cancels those in flight within its CloseTimeout and
// flushes its difference log before CloseExtras returns.
func (st *Set) CloseExtras() {
	for _, r := range st.routes {
		if r.mirror != nil {
			_ = r.mirror.Close()
		}
	}
}

// Target returns the route a split or shadow target names: a route name,
// else a model's route; nil if none.
func (st *Set) Target(name string) *Route {
	if r := st.byName[name]; r != nil {
		return r
	}
	return st.byModel[name]
}

// Config is the Set's configuration.
func (st *Set) Config() *config.Config { return st.cfg }

// Routes are the routes in config order.
func (st *Set) Routes() []*Route { return st.routes }

// Route returns the route named name, nil if none.
func (st *Set) Route(name string) *Route { return st.byName[name] }

// Models are the model names routed, sorted.
func (st *Set) Models() []string { return st.models }

// ModelsJSON is the answer to GET /v1/models.
func (st *Set) ModelsJSON() []byte { return st.modelsJSON }

// RetryAfter is the Retry-After value of overload answers.
func (st *Set) RetryAfter() []byte { return st.retryAfter }

// NeedBody reports whether matching may read the request body.
func (st *Set) NeedBody() bool { return st.needBody }

// Match applies the route order: the model index (models and LoRA
// adapters, then adapter prefixes), the ordered routes, the "*" route. A
// miss is an *UnknownError.
func (st *Set) Match(host, path []byte, h Header, model []byte, hasModel bool) (*Route, error) {
	if hasModel {
		if r := st.byModel[string(model)]; r != nil {
			return r, nil
		}
		for _, p := range st.byPrefix {
			if len(model) > len(p.prefix) && string(model[:len(p.prefix)]) == p.prefix {
				return p.r, nil
			}
		}
	}
	for _, r := range st.ordered {
		if r.matches(host, path, h, model, hasModel) {
			return r, nil
		}
	}
	if st.fallback != nil {
		return st.fallback, nil
	}
	e := &UnknownError{Path: string(path), Available: st.models}
	if hasModel {
		e.Model = string(model)
	}
	return nil, e
}

// UnknownError says what a request asked for that no route serves, and
// what exists. It answers 404.
type UnknownError struct {
	Model     string   // the model asked for; empty when none was named
	Path      string   // the request path
	Available []string // models the gateway serves
}

func (e *UnknownError) Error() string {
	what := fmt.Sprintf("path %q", e.Path)
	if e.Model != "" {
		what = fmt.Sprintf("model %q", e.Model)
	}
	return fmt.Sprintf("gateway: no route for %s; available models: [%s]", what, strings.Join(e.Available, ", "))
}

// RegisterGauges registers the live gauges of the current Set: per route
// its in-flight requests, queue depth by priority class and slots; per
// node its weight, in-flight count, health exclusion and breaker state,
// read at scrape time from the tables. current returns the Set in force.
func RegisterGauges(meter metric.Meter, current func() *Set) error {
	inflight, err1 := meter.Int64ObservableGauge("switchyard_gateway_inflight", metric.WithDescription("Requests in flight, by route."))
	weights, err2 := meter.Float64ObservableGauge("switchyard_gateway_node_weight", metric.WithDescription("Node weight in the route's current table."))
	nodeInflight, err3 := meter.Int64ObservableGauge("switchyard_gateway_node_inflight", metric.WithDescription("Requests in flight on a node."))
	nodeOut, err4 := meter.Int64ObservableGauge("switchyard_gateway_node_health_excluded",
		metric.WithDescription("1 while a node is out of picks for failing its health check or as an outlier, else 0."))
	depth, err5 := meter.Int64ObservableGauge("switchyard_gateway_queue_depth",
		metric.WithDescription("Requests waiting in the route's queue (every node at its per-node limit), by route and priority class."))
	slots, err6 := meter.Int64ObservableGauge("switchyard_gateway_queue_slots",
		metric.WithDescription("Requests the route's ready nodes may hold at once (per-node limit times ready nodes); past it, requests queue."))
	breaker, err7 := meter.Int64ObservableGauge("switchyard_gateway_node_breaker_state",
		metric.WithDescription("A node's circuit breaker: 0 closed, 1 half-open, 2 open."))
	for _, e := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if e != nil {
			return fmt.Errorf("gateway: metrics: %w", e)
		}
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := current()
		if st == nil {
			return nil
		}
		for _, r := range st.routes {
			tb := r.table.Load()
			if tb == nil {
				continue
			}
			o.ObserveInt64(inflight, r.reg.InFlight(), r.stats.Attrs())
			o.ObserveInt64(slots, int64(r.queue.Limit()), r.stats.Attrs())
			for c := range flow.NumClasses {
				o.ObserveInt64(depth, int64(r.queue.Depth(c)), r.stats.ClassAttrs(c))
			}
			meta := r.meta.Load()
			for i := 0; i < tb.Len(); i++ {
				e := tb.Endpoint(i)
				m, ok := (*meta)[e.ID()]
				if !ok {
					continue
				}
				o.ObserveFloat64(weights, tb.Weight(i), m.Attrs)
				o.ObserveInt64(nodeInflight, e.InFlight(), m.Attrs)
				var out int64
				if e.Exclusions()&balancer.ExcludeHealth != 0 {
					out = 1
				}
				o.ObserveInt64(nodeOut, out, m.Attrs)
				if u, ok := e.Value().(*upstream.Node); ok {
					o.ObserveInt64(breaker, int64(u.BreakerState()), m.Attrs)
				}
			}
		}
		return nil
	}, inflight, weights, nodeInflight, nodeOut, depth, slots, breaker)
	if err != nil {
		return fmt.Errorf("gateway: metrics callback: %w", err)
	}
	return nil
}
