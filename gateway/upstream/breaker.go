package upstream

import "github.com/sony/gobreaker/v2"

// BreakerState is a node's circuit breaker state as a number ordered by
// severity, the value of switchyard_gateway_node_breaker_state: the
// worst state of a route's nodes is their max(), and its open breakers
// are those == BreakerOpen.
//
// One numeric series per node, as Envoy exposes its breakers (a gauge per
// breaker, 0 closed and 1 open: envoyproxy/envoy
// docs/root/configuration/upstream/cluster_manager/cluster_stats.rst
// @ac5edea3, "Circuit breakers statistics"), rather than HAProxy's one
// series per state with a state label (haproxy/haproxy
// addons/promex/service-prometheus.c, ST_I_PX_STATUS: "Current status of
// the service, per state label value"): a route may have thousands of
// nodes, and a state label would triple their series for a value that
// fits in one. Unlike Envoy's, ours has a third state, so the number is
// ordered: closed < half-open < open.
type BreakerState int

// Breaker states.
const (
	BreakerClosed   BreakerState = 0 // requests flow
	BreakerHalfOpen BreakerState = 1 // the open period ended; one trial decides
	BreakerOpen     BreakerState = 2 // the node is out of picks for the open period
)

// String is the state's name as the admin API shows it.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// BreakerState is the breaker's state now. It takes the breaker's lock
// (and moves an open breaker whose period ended to half-open): call it at
// scrape time, not per request.
func (n *Node) BreakerState() BreakerState {
	switch n.cb.State() {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}
