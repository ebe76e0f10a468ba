package telemetry

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/flow"
)

var (
	requestsDesc = prometheus.NewDesc("switchyard_gateway_requests_total",
		"Requests answered, by route, model and result class.", []string{"route", "model", "code"}, nil)
	latencyDesc = prometheus.NewDesc("switchyard_gateway_request_duration_seconds",
		"Time from request received to response finished, by route and model.", []string{"route", "model"}, nil)
	ttftDesc = prometheus.NewDesc("switchyard_gateway_time_to_first_token_seconds",
		"Streamed answers: time from request received to the first event carrying output, by route and model.", []string{"route", "model"}, nil)
	itlDesc = prometheus.NewDesc("switchyard_gateway_inter_token_latency_seconds",
		"Streamed answers: time between two events carrying output, by route and model.", []string{"route", "model"}, nil)
	tokensDesc = prometheus.NewDesc("switchyard_gateway_tokens_total",
		"Tokens the engines reported in their usage, by route, model and type (input: prompt, output: completion).", []string{"route", "model", "type"}, nil)
	tenantTokensDesc = prometheus.NewDesc("switchyard_gateway_tenant_tokens_total",
		"Tokens the engines reported in their usage, by tenant, route, model and type.", []string{"tenant", "route", "model", "type"}, nil)
	retriesDesc = prometheus.NewDesc("switchyard_gateway_retries_total",
		"Retries on another node, by route.", []string{"route"}, nil)
	fallbacksDesc = prometheus.NewDesc("switchyard_gateway_fallbacks_total",
		"Requests a route sent to its fallback route, by route (the one that could not serve them) and reason "+
			"(5xx: a failure or 5xx answer, 429: the node or route refused with 429, saturated: the route was full).",
		[]string{"route", "reason"}, nil)
	ejectionsDesc = prometheus.NewDesc("switchyard_gateway_ejections_total",
		"Circuit breakers opened, by route.", []string{"route"}, nil)
	nodeRequestsDesc = prometheus.NewDesc("switchyard_gateway_node_requests_total",
		"Requests answered by a node, by route, node and result class.", []string{"route", "node", "code"}, nil)
	nodeUpstreamDesc = prometheus.NewDesc("switchyard_gateway_node_upstream_seconds",
		"Time from sending a request to the node to its answer head (the node's response time, without the gateway's queue or the body), by route and node (sum and count).", []string{"route", "node"}, nil)
	nodeTTFTDesc = prometheus.NewDesc("switchyard_gateway_node_time_to_first_token_seconds",
		"Streamed answers: time from request received to the first event carrying output, by route and node (sum and count).", []string{"route", "node"}, nil)
	queueWaitDesc = prometheus.NewDesc("switchyard_gateway_queue_wait_seconds",
		"Time a request waited in its route's queue before it got a slot, by route and priority class.", []string{"route", "class"}, nil)
	queueRequestsDesc = prometheus.NewDesc("switchyard_gateway_queue_requests_total",
		"Requests that found their route full, by route, priority class and how they left the queue "+
			"(dispatched, timeout, cancelled, displaced, rejected).", []string{"route", "class", "outcome"}, nil)
	buildInfoDesc = prometheus.NewDesc("switchyard_build_info",
		"The running binary: version, revision and Go version. Always 1.", []string{"version", "revision", "go_version"}, nil)
)

// collector exports the route, model, tenant and node series from their
// atomics at scrape time.
type collector struct{ t *Metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, latencyDesc, ttftDesc, itlDesc, tokensDesc, tenantTokensDesc,
		retriesDesc, fallbacksDesc, ejectionsDesc, nodeRequestsDesc, nodeUpstreamDesc, nodeTTFTDesc, queueWaitDesc, queueRequestsDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.routes {
		if s.name != "" { // route="" never retries: nothing is chosen yet
			ch <- prometheus.MustNewConstMetric(retriesDesc, prometheus.CounterValue, float64(s.retries.Load()), s.name)
			ch <- prometheus.MustNewConstMetric(ejectionsDesc, prometheus.CounterValue, float64(s.ejections.Load()), s.name)
			for i, reason := range FallbackReasons {
				ch <- prometheus.MustNewConstMetric(fallbacksDesc, prometheus.CounterValue, float64(s.fallbacks[i].Load()), s.name, reason)
			}
			s.collectQueue(ch)
		}
		s.mu.Lock()
		for _, m := range s.models {
			m.collect(ch)
		}
		s.mu.Unlock()
	}
	for _, n := range t.nodes {
		for i := range n.requests {
			if v := n.requests[i].Load(); v > 0 {
				ch <- prometheus.MustNewConstMetric(nodeRequestsDesc, prometheus.CounterValue, float64(v), n.route, n.node, classNames[i])
			}
		}
		if cnt := n.headCount.Load(); cnt > 0 {
			ch <- prometheus.MustNewConstSummary(nodeUpstreamDesc, cnt, float64(n.headNanos.Load())/1e9, nil, n.route, n.node)
		}
		if cnt := n.ttftCount.Load(); cnt > 0 {
			ch <- prometheus.MustNewConstSummary(nodeTTFTDesc, cnt, float64(n.ttftNanos.Load())/1e9, nil, n.route, n.node)
		}
	}
}

// collectQueue exports the route's queue series that counted something.
func (s *RouteStats) collectQueue(ch chan<- prometheus.Metric) {
	for c := range s.queue {
		q := &s.queue[c]
		class := flow.Class(c).String()
		if hm := q.wait.metric(queueWaitDesc, s.name, class); hm != nil {
			ch <- hm
		}
		for o := range q.outcomes {
			if v := q.outcomes[o].Load(); v > 0 {
				ch <- prometheus.MustNewConstMetric(queueRequestsDesc, prometheus.CounterValue, float64(v), s.name, class, flow.Outcome(o).String())
			}
		}
	}
}

func (m *ModelStats) collect(ch chan<- prometheus.Metric) {
	for i := range m.requests {
		if v := m.requests[i].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(v), m.route, m.model, classNames[i])
		}
	}
	for _, h := range []struct {
		h    *histogram
		desc *prometheus.Desc
	}{{&m.latency, latencyDesc}, {&m.ttft, ttftDesc}, {&m.itl, itlDesc}} {
		if hm := h.h.metric(h.desc, m.route, m.model); hm != nil {
			ch <- hm
		}
	}
	for i := range m.tokens {
		if v := m.tokens[i].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.CounterValue, float64(v), m.route, m.model, tokenTypeNames[i])
		}
	}
	for _, tt := range *m.tenants.Load() {
		for i := range tt.tokens {
			if v := tt.tokens[i].Load(); v > 0 {
				ch <- prometheus.MustNewConstMetric(tenantTokensDesc, prometheus.CounterValue, float64(v), tt.tenant, m.route, m.model, tokenTypeNames[i])
			}
		}
	}
}

// ReadBuildInfo is the version and revision Go stamped into the binary
// (the main module's version unless "(devel)", vcs.revision), "dev" and
// "unknown" when it has none. Builds that set them at link time pass
// them with WithBuildInfo instead.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "dev", Revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			b.Revision = s.Value
		}
	}
	return b
}

// buildInfoCollector exports switchyard_build_info.
func buildInfoCollector(b BuildInfo) prometheus.Collector {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return constCollector{prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, b.Version, b.Revision, runtime.Version())}
}

// constCollector exports fixed metrics.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c {
		ch <- m.Desc()
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
