package gateway

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics GETs the admin port's /metrics as Prometheus would and
// parses it with expfmt.
func scrapeMetrics(t testing.TB, gw *testGateway) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+gw.admin+"/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("/metrics: %v\n%s", err, b)
	}
	return fams
}

// metricValue is the value of the series of name whose labels include
// want (name=value pairs), summed over the matching series: a counter's
// or gauge's value, a histogram's or summary's count. ok is false when no
// series matches.
func metricValue(fams map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue next
			}
		}
		ok = true
		switch {
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.GetSummary() != nil:
			v += float64(m.GetSummary().GetSampleCount())
		}
	}
	return v, ok
}

// familyNames lists the scrape's metric families, for failure messages.
func familyNames(fams map[string]*dto.MetricFamily) string {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// TestQueueAndBreakerMetrics drives a gateway into its queue and a node's
// breaker open, and reads the result from the real /metrics: the queue
// depth and slots while a request waits for a full route, its wait and
// outcome once it got a slot, a wait that timed out, and the breaker
// state and ejection count of a failing node.
func TestQueueAndBreakerMetrics(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{}, 4)
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost { // health probes are GETs: answer them
			held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, `{}`)
	})
	failing := backend(t, "failing", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	cfg := testConfig(staticRoute("q", slow.URL), staticRoute("qt", slow.URL), staticRoute("broken", failing.URL))
	cfg.Limits.MaxPerNode = 1
	cfg.Routes[1].Queue.Timeout = 50 * time.Millisecond
	cfg.Routes[2].Breaker.Failures = 2
	cfg.Routes[2].Breaker.OpenFor = time.Hour
	for i := range cfg.Routes {
		cfg.Routes[i].HealthCheck.Disable = true
		cfg.Routes[i].Outlier.Disable = true
	}
	gw := startGateway(t, cfg)
	c := testClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type answer struct {
		status int
		body   string
	}
	send := func(model string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.url("/v1/completions"), strings.NewReader(`{"model":"`+model+`"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				ch <- answer{0, err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- answer{resp.StatusCode, string(b)}
		}()
		return ch
	}
	waitHeld := func() {
		t.Helper()
		select {
		case <-held:
		case <-ctx.Done():
			t.Fatal("the node never got the request")
		}
	}

	// Route q: one request holds its only slot, the next one waits.
	first := send("q")
	waitHeld()
	second := send("q")
	var fams map[string]*dto.MetricFamily
	waitFor(t, 10*time.Second, "the second request to wait in the queue", func() bool {
		fams = scrapeMetrics(t, gw)
		v, _ := metricValue(fams, "switchyard_gateway_queue_depth", "route", "q", "class", "interactive")
		return v == 1
	})
	if v, ok := metricValue(fams, "switchyard_gateway_queue_slots", "route", "q"); !ok || v != 1 {
		t.Errorf("queue_slots{route=q} = %v (found %t), want 1", v, ok)
	}
	if v, ok := metricValue(fams, "switchyard_gateway_queue_depth", "route", "q", "class", "batch"); !ok || v != 0 {
		t.Errorf("queue_depth{route=q,class=batch} = %v (found %t), want 0", v, ok)
	}
	release <- struct{}{} // the first finishes; the second gets its slot
	waitHeld()
	release <- struct{}{}
	for _, ch := range []chan answer{first, second} {
		if a := <-ch; a.status != 200 {
			t.Fatalf("route q: %d %s", a.status, a.body)
		}
	}

	// Route qt: the waiting request times out after 50 ms.
	holder := send("qt")
	waitHeld()
	if a := <-send("qt"); a.status != http.StatusServiceUnavailable && a.status != http.StatusTooManyRequests {
		t.Errorf("route qt, queue timeout: %d %s, want 503 or 429", a.status, a.body)
	}
	release <- struct{}{}
	if a := <-holder; a.status != 200 {
		t.Fatalf("route qt: %d %s", a.status, a.body)
	}

	// Route broken: two failures open the node's breaker.
	for range 2 {
		if a := <-send("broken"); a.status < 500 {
			t.Fatalf("route broken: %d %s", a.status, a.body)
		}
	}
	waitFor(t, 10*time.Second, "the breaker to show open", func() bool {
		fams = scrapeMetrics(t, gw)
		v, _ := metricValue(fams, "switchyard_gateway_node_breaker_state", "route", "broken")
		return v == 2
	})

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"switchyard_gateway_queue_requests_total", []string{"route", "q", "class", "interactive", "outcome", "dispatched"}, 1},
		{"switchyard_gateway_queue_wait_seconds", []string{"route", "q", "class", "interactive"}, 1},
		{"switchyard_gateway_queue_requests_total", []string{"route", "qt", "class", "interactive", "outcome", "timeout"}, 1},
		{"switchyard_gateway_queue_depth", []string{"route", "q"}, 0},
		{"switchyard_gateway_queue_depth", []string{"route", "qt"}, 0},
		{"switchyard_gateway_node_breaker_state", []string{"route", "q"}, 0},
		{"switchyard_gateway_ejections_total", []string{"route", "broken"}, 1},
		{"switchyard_gateway_ejections_total", []string{"route", "q"}, 0},
	} {
		v, ok := metricValue(fams, c.name, c.labels...)
		if !ok || v != c.want {
			t.Errorf("%s%v = %v (found %t), want %v; families: %s", c.name, c.labels, v, ok, c.want, familyNames(fams))
		}
	}
	// The timed-out wait is not a wait that got a slot.
	if v, _ := metricValue(fams, "switchyard_gateway_queue_wait_seconds", "route", "qt"); v != 0 {
		t.Errorf("queue_wait_seconds{route=qt} counts %v waits, want 0", v)
	}
}
