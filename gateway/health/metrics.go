package health

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are the health checks' instruments, shared by every route's
// Checker. Safe for concurrent use.
type Metrics struct {
	checks     metric.Int64Counter
	exclusions metric.Int64Counter
}

// NewMetrics registers the instruments on meter (the gateway's):
//
//	switchyard_gateway_health_checks{route,node,result}   probes, by result:
//	    healthy, unhealthy, busy (timed out while the node answered
//	    requests: counted healthy), no_endpoint (404 or not HTTP/1.x)
//	switchyard_gateway_node_exclusions{route,node,reason}  nodes taken out
//	    of picks, by reason: health, latency, success_rate
//
// Registering twice on one meter returns the same instruments.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	checks, err1 := meter.Int64Counter("switchyard_gateway_health_checks",
		metric.WithDescription("Active health check probes, by route, node and result."))
	exclusions, err2 := meter.Int64Counter("switchyard_gateway_node_exclusions",
		metric.WithDescription("Nodes taken out of picks by health checks or outlier detection, by route, node and reason."))
	for _, err := range []error{err1, err2} {
		if err != nil {
			return nil, fmt.Errorf("gateway: health metrics: %w", err)
		}
	}
	return &Metrics{checks: checks, exclusions: exclusions}, nil
}

// Probe results and exclusion reasons, as metric attributes and in the
// admin API.
const (
	resultHealthy    = "healthy"
	resultUnhealthy  = "unhealthy"
	resultBusy       = "busy"
	resultNoEndpoint = "no_endpoint"

	reasonHealth      = "health"
	reasonLatency     = "latency"
	reasonSuccessRate = "success_rate"
)

// nodeAttrs are one node's attribute sets, built on first use by the
// checker's loop.
type nodeAttrs struct {
	route, node string
	sets        map[string]metric.AddOption
}

func (a *nodeAttrs) get(key, value string) metric.AddOption {
	k := key + "=" + value
	if o, ok := a.sets[k]; ok {
		return o
	}
	if a.sets == nil {
		a.sets = map[string]metric.AddOption{}
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("route", a.route), attribute.String("node", a.node), attribute.String(key, value)))
	a.sets[k] = o
	return o
}

func (m *Metrics) probe(a *nodeAttrs, res string) {
	if m != nil {
		m.checks.Add(context.Background(), 1, a.get("result", res))
	}
}

func (m *Metrics) excluded(a *nodeAttrs, reason string) {
	if m != nil {
		m.exclusions.Add(context.Background(), 1, a.get("reason", reason))
	}
}
