package resource_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard-dev/switchyard/discovery"
)

// collect returns the value of a client metric for app (the single data
// point whose "app" attribute is app).
func collect(t *testing.T, ctx context.Context, r *sdkmetric.ManualReader, name, app string) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value("app"); v.AsString() == app {
						return float64(p.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value("app"); v.AsString() == app {
						return p.Value, true
					}
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value("app"); v.AsString() == app || app == "" {
						return float64(p.Value), true
					}
				}
			}
		}
	}
	return 0, false
}

// TestClientOutageIsVisible (issue 15): when every Resource instance is
// down the client keeps its list, logs one warning, and its metrics say
// stale; when one answers again it logs the recovery at info and the
// metrics say fresh.
func TestClientOutageIsVisible(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	servers := addrs(lns)
	in := startInstance(t, lns[0], baseConfig(nil))
	startAgent(t, agentConfig(servers, "llama", "o1", 9800))
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	var logs testlog.Buffer
	w := startWatcher(t, servers, "llama", func(c *discovery.ClientConfig) {
		c.Meter = provider.Meter("test")
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.PullInterval = 100 * time.Millisecond
		c.WatchWait = 200 * time.Millisecond
	})
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return eligible(l, "o1") }); err != nil {
		t.Fatal(err)
	}
	if v, ok := collect(t, ctx, reader, "switchyard_discovery_stale", "llama"); !ok || v != 0 {
		t.Fatalf("fresh view: stale = %v (%v)", v, ok)
	}
	if v, _ := collect(t, ctx, reader, "switchyard_discovery_nodes", "llama"); v != 1 {
		t.Fatalf("nodes = %v", v)
	}

	in.kill()
	poll := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: never; logs:\n%s", what, logs.String())
			case <-tick.C:
			}
		}
	}
	poll("the outage is logged", func() bool { return strings.Contains(logs.String(), "no Resource instance answers") })
	if v, _ := collect(t, ctx, reader, "switchyard_discovery_stale", "llama"); v != 1 {
		t.Fatalf("during the outage: stale = %v", v)
	}
	if v, _ := collect(t, ctx, reader, "switchyard_discovery_outages", "llama"); v != 1 {
		t.Fatalf("outages = %v", v)
	}
	if v, _ := collect(t, ctx, reader, "switchyard_discovery_fetch_errors", ""); v < 1 {
		t.Fatalf("fetch errors = %v", v)
	}
	if l, _ := w.c.List("llama"); !listed(&l, "o1") {
		t.Fatal("the outage emptied the view")
	}
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("want one warning for the outage, got %d:\n%s", n, out)
	}

	in.restart(baseConfig(nil))
	poll("the recovery is logged", func() bool { return strings.Contains(logs.String(), "Resource answers again") })
	if !strings.Contains(logs.String(), "level=INFO msg=\"discovery: Resource answers again\"") {
		t.Fatalf("recovery not at info level:\n%s", logs.String())
	}
	poll("the view is fresh again", func() bool {
		v, _ := collect(t, ctx, reader, "switchyard_discovery_stale", "llama")
		return v == 0
	})
}
