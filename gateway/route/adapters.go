package route

import (
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery"
)

// adapterNames are a route's match.adapters: exact names and prefixes
// (entries ending in "*"). Immutable after New.
type adapterNames struct {
	exact    map[string]struct{}
	prefixes []string
}

func newAdapterNames(entries []string) adapterNames {
	var a adapterNames
	for _, e := range entries {
		if p, wild := strings.CutSuffix(e, "*"); wild {
			a.prefixes = append(a.prefixes, p)
			continue
		}
		if a.exact == nil {
			a.exact = make(map[string]struct{}, len(entries))
		}
		a.exact[e] = struct{}{}
	}
	return a
}

func (a *adapterNames) any() bool { return len(a.exact) > 0 || len(a.prefixes) > 0 }

// has reports whether model is one of the adapters. It does not allocate.
func (a *adapterNames) has(model []byte) bool {
	if _, ok := a.exact[string(model)]; ok {
		return true
	}
	return a.prefixed(model)
}

func (a *adapterNames) prefixed(model []byte) bool {
	for _, p := range a.prefixes {
		if len(model) > len(p) && string(model[:len(p)]) == p {
			return true
		}
	}
	return false
}

// AdapterKey returns balancer.AffinityKey(model) when model names a LoRA
// adapter of the route, for AffinityRequest.Adapter, and 0 for a base
// model or when affinity is off. An adapter is a name of the route's
// match.adapters, or one that a node of the route reports loaded (vLLM
// lora_requests_info, through discovery): vLLM serves an adapter under
// its own model name, which is never the base model's. It does not
// allocate; safe for concurrent use.
func (r *Route) AdapterKey(model []byte) uint64 {
	if r.aff == nil || len(model) == 0 {
		return 0
	}
	if r.adapters.has(model) {
		return balancer.AffinityKey(model)
	}
	if m := r.reported.Load(); m != nil {
		if _, ok := (*m)[string(model)]; ok {
			return balancer.AffinityKey(model)
		}
	}
	return 0
}

// nodeReport is what affinity uses of a node's reported load: its LoRA
// adapters (running and waiting), its prefix-cache counters or hit rate.
// ok is false when the load carries none of them.
func nodeReport(l *discovery.Load) (rep balancer.NodeReport, ok bool) {
	rep.HitRate = l.PrefixCacheHitRate.Or(-1)
	h, okH := l.PrefixCacheHits.Get()
	q, okQ := l.PrefixCacheQueries.Get()
	if okH && okQ {
		// Known counters, zero included: a known 0 is the starting point
		// calibration needs before the engine's first traffic.
		rep.PrefixHits, rep.PrefixQueries, rep.PrefixCounts = h, q, true
	}
	if l.LoRA.Known() {
		rep.Adapters = append(l.LoRA.Running(), l.LoRA.Waiting()...)
		slices.Sort(rep.Adapters) // an adapter both running and waiting counts once
		rep.Adapters = slices.Compact(rep.Adapters)
	}
	return rep, okH && okQ || rep.HitRate >= 0 || len(rep.Adapters) > 0
}
