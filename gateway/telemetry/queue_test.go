package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/flow"
)

// TestQueueSeries: what a route's queue reports (flow.Config.Observe)
// reaches the scrape: outcomes per class, and the waits of the requests
// that got a slot (not those that gave up or were turned away).
func TestQueueSeries(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	r := m.Route("chat")
	r.ObserveQueue(flow.Interactive, 30*time.Millisecond, flow.Dispatched)
	r.ObserveQueue(flow.Interactive, 2*time.Second, flow.Dispatched)
	r.ObserveQueue(flow.Batch, 30*time.Second, flow.TimedOut)
	r.ObserveQueue(flow.Batch, 0, flow.Rejected)
	r.ObserveQueue(flow.Batch, 0, flow.Rejected)
	r.ObserveQueue(flow.Batch, time.Second, flow.Cancelled)
	r.ObserveQueue(flow.NumClasses, time.Second, flow.Dispatched) // out of range: ignored
	m.Route("idle")                                               // nothing queued: no series
	fams := scrape(t, m)

	got := map[string]float64{}
	for k, s := range series(t, fams, "switchyard_gateway_queue_requests_total") {
		got[k] = value(s)
	}
	want := map[string]float64{
		"class=interactive,outcome=dispatched,route=chat": 2,
		"class=batch,outcome=timeout,route=chat":          1,
		"class=batch,outcome=rejected,route=chat":         2,
		"class=batch,outcome=cancelled,route=chat":        1,
	}
	if len(got) != len(want) {
		t.Errorf("queue_requests_total: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("queue_requests_total{%s} = %v, want %v", k, got[k], v)
		}
	}
	if n := r.QueueOutcomes(flow.Batch, flow.Rejected); n != 2 {
		t.Errorf("QueueOutcomes(batch, rejected) = %d", n)
	}

	waits := series(t, fams, "switchyard_gateway_queue_wait_seconds")
	if len(waits) != 1 {
		t.Fatalf("queue_wait_seconds: %d series, want interactive only: %v", len(waits), waits)
	}
	h := waits["class=interactive,route=chat"].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 2.03 {
		t.Errorf("interactive wait: count %d sum %v, want 2 and 2.03", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 2:
			want = 2
		case b.GetUpperBound() >= 0.05:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("interactive wait bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}
