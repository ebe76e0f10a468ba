// Package telemetry owns the gateway's metrics and traces: per-route
// counters and latency histograms kept in atomics on the hot path and read
// at scrape time through the OTel Prometheus exporter, and the tracer
// (parent-based sampling, OTLP/HTTP export).
//
// It never keeps a request and never blocks one: recording is atomic adds.
// Everything here is safe for concurrent use.
package telemetry

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

// StatusClientClosed is the status recorded when the client went away
// before its answer was complete (nginx's 499).
const StatusClientClosed = 499

func classOf(status int) int {
	switch {
	case status == StatusClientClosed:
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

// RouteStats are one route's live counters: plain atomics on the hot path,
// read by the metrics callbacks at scrape time. They outlive reloads (kept
// by route name). Must not be copied.
type RouteStats struct {
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

// Retry counts one retry on another node.
func (s *RouteStats) Retry() { s.retries.Add(1) }

// Ejection counts one circuit breaker that opened.
func (s *RouteStats) Ejection() { s.ejections.Add(1) }

// Retries is the retries counted.
func (s *RouteStats) Retries() uint64 { return s.retries.Load() }

// Ejections is the circuit breakers that opened.
func (s *RouteStats) Ejections() uint64 { return s.ejections.Load() }

// Answered is the requests answered, every class.
func (s *RouteStats) Answered() uint64 {
	var n uint64
	for i := range s.requests {
		n += s.requests[i].Load()
	}
	return n
}

// Failed is the requests answered 5xx (a stream the node broke counts as
// 502).
func (s *RouteStats) Failed() uint64 { return s.requests[class5xx].Load() }

// Cancelled is the requests whose client went away (499).
func (s *RouteStats) Cancelled() uint64 { return s.requests[classCancelled].Load() }

// Attrs returns the route's attribute set, built once, for gauges keyed by
// route.
func (s *RouteStats) Attrs() metric.MeasurementOption { return s.routeAttrs }

func newRouteStats(name string) *RouteStats {
	s := &RouteStats{name: name}
	for i := range s.classAttrs {
		s.classAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name), attribute.String("code", classNames[i])))
	}
	s.routeAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("route", name)))
	return s
}

// Observe records one finished request. It does not allocate.
func (s *RouteStats) Observe(status int, d time.Duration) {
	s.requests[classOf(status)].Add(1)
	sec := d.Seconds()
	i := 0
	for i < len(latencyBounds) && sec > latencyBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNanos.Add(uint64(max(d, 0)))
}

// Metrics owns the gateway's metrics: an OTel meter provider exporting
// through the OTel Prometheus exporter into a private registry, plus a
// collector for the latency histograms (read from atomics, so recording
// costs the hot path nothing but atomic adds).
type Metrics struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider

	mu    sync.Mutex
	stats map[string]*RouteStats // by route name; guarded by mu
}

// NewMetrics builds the registry with the per-route counters (requests by
// result class, retries, ejections) and latency histograms. Gauges of
// live state are registered by their owners through Meter.
func NewMetrics() (*Metrics, error) {
	t := &Metrics{reg: prometheus.NewRegistry(), stats: map[string]*RouteStats{}}
	exp, err := otelprom.New(otelprom.WithRegisterer(t.reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics exporter: %w", err)
	}
	t.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := t.Meter()
	requests, err1 := m.Int64ObservableCounter("switchyard_gateway_requests", metric.WithDescription("Requests answered, by route and result class."))
	retries, err2 := m.Int64ObservableCounter("switchyard_gateway_retries", metric.WithDescription("Retries on another node."))
	ejections, err3 := m.Int64ObservableCounter("switchyard_gateway_ejections", metric.WithDescription("Circuit breakers opened."))
	for _, e := range []error{err1, err2, err3} {
		if e != nil {
			return nil, fmt.Errorf("telemetry: metrics: %w", e)
		}
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, s := range t.stats {
			for c := range s.requests {
				if v := s.requests[c].Load(); v > 0 {
					o.ObserveInt64(requests, int64(v), s.classAttrs[c])
				}
			}
			o.ObserveInt64(retries, int64(s.retries.Load()), s.routeAttrs)
			o.ObserveInt64(ejections, int64(s.ejections.Load()), s.routeAttrs)
		}
		return nil
	}, requests, retries, ejections)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics callback: %w", err)
	}
	if err := t.reg.Register(latencyCollector{t}); err != nil {
		return nil, fmt.Errorf("telemetry: metrics: %w", err)
	}
	return t, nil
}

// Meter is the gateway's meter, for instruments registered elsewhere.
func (t *Metrics) Meter() metric.Meter {
	return t.provider.Meter("github.com/switchyard-dev/switchyard/gateway")
}

// Route returns the stats of a route name, shared across reloads. The
// name "" holds answers given before a route was chosen.
func (t *Metrics) Route(name string) *RouteStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.stats[name]
	if !ok {
		s = newRouteStats(name)
		t.stats[name] = s
	}
	return s
}

// Handler serves the Prometheus exposition.
func (t *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

// Shutdown stops the meter provider.
func (t *Metrics) Shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}

var latencyDesc = prometheus.NewDesc("switchyard_gateway_request_duration_seconds",
	"Time from request received to response finished, by route.", []string{"route"}, nil)

// latencyCollector exports the routes' latency histograms.
type latencyCollector struct{ t *Metrics }

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
