package resource

import (
	"context"
	"fmt"
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/switchyard-dev/switchyard/discovery"
)

// buildInfo exports switchyard_build_info as the gateway does
// (gateway/telemetry): the same name, help and labels.
func buildInfo(version, revision string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	if revision == "" {
		revision = "unknown"
	}
	desc := prometheus.NewDesc("switchyard_build_info",
		"The running binary: version, revision and Go version. Always 1.", []string{"version", "revision", "go_version"}, nil)
	return constMetrics{prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, version, revision, runtime.Version())}
}

// constMetrics exports fixed metrics.
type constMetrics []prometheus.Metric

func (c constMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c {
		ch <- m.Desc()
	}
}

func (c constMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// telemetry owns the instance's metrics, on the same library as the
// gateway's (issue 15): an OTel meter provider exporting through the OTel
// Prometheus exporter into a private registry, served with promhttp. Every
// value is read at scrape time from the server's atomics and apps, so
// ingest pays nothing for it. Counters are exported with the _total
// suffix; the names are those of the hand-written exposition they replace.
type telemetry struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

func newTelemetry(s *Server) (*telemetry, error) {
	t := &telemetry{reg: prometheus.NewRegistry()}
	exp, err := otelprom.New(otelprom.WithRegisterer(t.reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("resource: metrics exporter: %w", err)
	}
	// The Go runtime and process collectors, as the gateway has: the
	// dashboard's process row charts both.
	if err := t.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("resource: metrics: %w", err)
	}
	if err := t.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("resource: metrics: %w", err)
	}
	if err := t.reg.Register(buildInfo(s.cfg.Version, s.cfg.Revision)); err != nil {
		return nil, fmt.Errorf("resource: metrics: %w", err)
	}
	t.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := t.provider.Meter("github.com/switchyard-dev/switchyard/discovery/resource")
	var errs []error
	counter := func(name, help string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(help))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, help string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(help))
		errs = append(errs, err)
		return g
	}
	type atomicCounter struct {
		inst metric.Int64ObservableCounter
		load func() uint64
	}
	st := &s.stats
	counters := []atomicCounter{
		{counter("switchyard_resource_heartbeats", "Heartbeats accepted (framed and HTTP)."), st.heartbeats.Load},
		{counter("switchyard_resource_http_heartbeats", "Heartbeats accepted over HTTP."), st.httpBeats.Load},
		{counter("switchyard_resource_stale_heartbeats", "Heartbeats older than one already applied (refused, or an offline beat repeated)."), st.staleBeats.Load},
		{counter("switchyard_resource_commits", "List versions committed."), st.commits.Load},
		{counter("switchyard_resource_changes", "Node changes committed from local heartbeats."), st.changes.Load},
		{counter("switchyard_resource_peer_changes_sent", "Changes queued to peers."), st.peerSent.Load},
		{counter("switchyard_resource_peer_changes_dropped", "Changes dropped for slow peers (they get a dump)."), st.peerDropped.Load},
		{counter("switchyard_resource_peer_changes_received", "Changes received from peers."), st.peerRecv.Load},
		{counter("switchyard_resource_expired", "Nodes expired by silence."), st.expired.Load},
		{counter("switchyard_resource_guard_held", "Expiries the per-app guard refused."), st.guardHeld.Load},
		{counter("switchyard_resource_apps_freed", "Empty apps freed."), st.appsFreed.Load},
	}
	rejections := counter("switchyard_resource_rejections", "Inputs rejected and not stored, by reason.")
	reloads := counter("switchyard_resource_credential_reloads", "Reloads of the credentials file, by result (ok, refused).")
	agentConns := gauge("switchyard_resource_agent_connections", "Open framed agent connections.")
	watches := gauge("switchyard_resource_watches", "List reads in flight (long-polls included).")
	peersUp := gauge("switchyard_resource_peers_connected", "Peers with a live outbound link.")
	apps := gauge("switchyard_resource_apps", "Apps held.")
	nodes := gauge("switchyard_resource_nodes", "Listed nodes by app and state.")
	version := gauge("switchyard_resource_list_version", "Current list version by app.")
	subs := gauge("switchyard_resource_subscribers", "Known subscribers by app.")
	for _, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("resource: metrics: %w", e)
		}
	}
	reasonAttrs := make([]metric.ObserveOption, len(discovery.Reasons()))
	for i, r := range discovery.Reasons() {
		reasonAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r.String())))
	}
	okAttr := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok")))
	refusedAttr := metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "refused")))
	states := []discovery.State{discovery.StateReady, discovery.StateDraining, discovery.StateSuspect}
	insts := []metric.Observable{rejections, reloads, agentConns, watches, peersUp, apps, nodes, version, subs}
	for _, c := range counters {
		insts = append(insts, c.inst)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, c := range counters {
			o.ObserveInt64(c.inst, int64(c.load()))
		}
		for i, r := range discovery.Reasons() {
			o.ObserveInt64(rejections, int64(s.rejections.Count(r)), reasonAttrs[i])
		}
		o.ObserveInt64(reloads, int64(st.credReloads.Load()), okAttr)
		o.ObserveInt64(reloads, int64(st.credFailed.Load()), refusedAttr)
		o.ObserveInt64(agentConns, st.agentConns.Load())
		o.ObserveInt64(watches, st.watches.Load())
		o.ObserveInt64(peersUp, int64(len(s.peers.connected())))
		list := s.appList()
		o.ObserveInt64(apps, int64(len(list)))
		for _, a := range list {
			var by [discovery.StateOffline + 1]int64
			a.mu.Lock()
			if a.freed {
				a.mu.Unlock()
				continue
			}
			for _, rec := range a.nodes {
				if !rec.removed && rec.node.State <= discovery.StateOffline {
					by[rec.node.State]++
				}
			}
			v, n := a.version, len(a.subs)
			a.mu.Unlock()
			app := attribute.String("app", a.name)
			for _, st := range states {
				o.ObserveInt64(nodes, by[st], metric.WithAttributes(app, attribute.String("state", st.String())))
			}
			o.ObserveInt64(version, int64(v), metric.WithAttributes(app))
			o.ObserveInt64(subs, int64(n), metric.WithAttributes(app))
		}
		return nil
	}, insts...)
	if err != nil {
		return nil, fmt.Errorf("resource: metrics callback: %w", err)
	}
	t.handler = promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
	return t, nil
}

// handleMetrics serves the instance's metrics in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.telemetry.handler.ServeHTTP(w, r)
}
