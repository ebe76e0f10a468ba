package gateway

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"net/http"
)

// Result classes counted per route.
const (
	class2xx = iota
	class3xx
	class4xx
	class5xx
	classCancelled
	classOther
	classCount
)

var classNames = [classCount]string{"2xx", "3xx", "4xx", "5xx", "cancelled", "other"}

func classOf(status int) int {
	switch {
	case status == statusClientClosedConn:
		return classCancelled
	case status >= 200 && status < 300:
		return class2xx
	case status >= 300 && status < 400:
		return class3xx
	case status >= 400 && status < 500:
		return class4xx
	case status >= 500 && status < 600:
		return class5xx
	}
	return classOther
}

// latencyBounds are the histogram bucket upper bounds in seconds.
var latencyBounds = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// routeStats are one route's live counters: plain atomics on the hot path,
// read by the metrics callbacks at scrape time. They outlive reloads (kept
// by route name). Must not be copied.
type routeStats struct {
	name      string
	requests  [classCount]atomic.Uint64
	retries   atomic.Uint64
	ejections atomic.Uint64
	buckets   [len(latencyBounds) + 1]atomic.Uint64
	sumNanos  atomic.Uint64
	// attrs per class, built once.
	classAttrs [classCount]metric.MeasurementOption
	routeAttrs metric.MeasurementOption
}

func newRouteStats(name string) *routeStats {
	s := &routeStats{name: name}
	for i := range s.classAttrs {
		s.classAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name), attribute.String("code", classNames[i])))
	}
	s.routeAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name)))
	return s
}

// observe records one finished request. It does not allocate.
func (s *routeStats) observe(status int, d time.Duration) {
	s.requests[classOf(status)].Add(1)
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNanos.Add(uint64(max(d, 0)))
}

// telemetry owns the gateway's metrics: an OTel meter provider exporting
// through the OTel Prometheus exporter into a private registry, plus a
// collector for the latency histograms (read from atomics, so recording
// costs the hot path nothing but atomic adds).
type telemetry struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider

	mu    sync.Mutex
	stats map[string]*routeStats // by route name; guarded by mu
}

func newTelemetry(g *Gateway) (*telemetry, error) {
	t := &telemetry{reg: prometheus.NewRegistry(), stats: map[string]*routeStats{}}
	exp, err := otelprom.New(otelprom.WithRegisterer(t.reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics exporter: %w", err)
	}
	t.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := t.provider.Meter("github.com/switchyard-dev/switchyard/gateway")
	requests, err1 := m.Int64ObservableCounter("switchyard_gateway_requests", metric.WithDescription("Requests answered, by route and result class."))
	retries, err2 := m.Int64ObservableCounter("switchyard_gateway_retries", metric.WithDescription("Retries on another node."))
	ejections, err3 := m.Int64ObservableCounter("switchyard_gateway_ejections", metric.WithDescription("Circuit breakers opened."))
	inflight, err4 := m.Int64ObservableGauge("switchyard_gateway_inflight", metric.WithDescription("Requests in flight, by route (all routes: route=\"\")."))
	weights, err5 := m.Float64ObservableGauge("switchyard_gateway_node_weight", metric.WithDescription("Node weight in the route's current table."))
	nodeInflight, err6 := m.Int64ObservableGauge("switchyard_gateway_node_inflight", metric.WithDescription("Requests in flight on a node."))
	for _, e := range []error{err1, err2, err3, err4, err5, err6} {
		if e != nil {
			return nil, fmt.Errorf("gateway: metrics: %w", e)
		}
	}
	all := metric.WithAttributeSet(attribute.NewSet(attribute.String("route", "")))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inflight, g.inflight.Load(), all)
		t.mu.Lock()
		for _, s := range t.stats {
			for c := range s.requests {
				if v := s.requests[c].Load(); v > 0 {
					o.ObserveInt64(requests, int64(v), s.classAttrs[c])
				}
			}
			o.ObserveInt64(retries, int64(s.retries.Load()), s.routeAttrs)
			o.ObserveInt64(ejections, int64(s.ejections.Load()), s.routeAttrs)
		}
		t.mu.Unlock()
		st := g.state.Load()
		if st == nil {
			return nil
		}
		for _, r := range st.routes {
			tb := r.table.Load()
			if tb == nil {
				continue
			}
			o.ObserveInt64(inflight, r.reg.InFlight(), r.stats.routeAttrs)
			meta := r.meta.Load()
			for i := 0; i < tb.Len(); i++ {
				e := tb.Endpoint(i)
				m, ok := (*meta)[e.ID()]
				if !ok {
					continue
				}
				o.ObserveFloat64(weights, tb.Weight(i), m.attrs)
				o.ObserveInt64(nodeInflight, e.InFlight(), m.attrs)
			}
		}
		return nil
	}, requests, retries, ejections, inflight, weights, nodeInflight)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics callback: %w", err)
	}
	if err := t.reg.Register(latencyCollector{t}); err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	return t, nil
}

// routeStats returns the stats of a route name, shared across reloads.
func (t *telemetry) routeStats(name string) *routeStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.stats[name]
	if !ok {
		s = newRouteStats(name)
		t.stats[name] = s
	}
	return s
}

func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

func (t *telemetry) shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}

var latencyDesc = prometheus.NewDesc("switchyard_gateway_request_duration_seconds",
	"Time from request received to response finished, by route.", []string{"route"}, nil)

// latencyCollector exports the routes' latency histograms.
type latencyCollector struct{ t *telemetry }

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- latencyDesc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	for _, s := range c.t.stats {
		buckets := make(map[float64]uint64, len(latencyBounds))
		var cum uint64
		for i, b := range latencyBounds {
			cum += s.buckets[i].Load()
			buckets[b] = cum
		}
		cum += s.buckets[len(latencyBounds)].Load()
		sum := float64(s.sumNanos.Load()) / 1e9
		if math.IsNaN(sum) {
			sum = 0
		}
		ch <- prometheus.MustNewConstHistogram(latencyDesc, cum, sum, buckets, s.name)
	}
}
