package admin

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
)

// testSet builds the routing state of static routes (name → node
// addresses with their weights); its tables exist at once.
func testSet(t *testing.T, routes map[string]map[string]float64) *route.Set {
	t.Helper()
	cfg := &config.Config{}
	for name, nodes := range routes {
		rc := config.RouteConfig{Name: name, Match: config.MatchConfig{Models: []string{name}}}
		for addr, w := range nodes {
			rc.Nodes = append(rc.Nodes, config.NodeConfig{HTTP: addr, Weight: w})
		}
		cfg.Routes = append(cfg.Routes, rc)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	st, err := route.NewSet(cfg, nil, route.Deps{Metrics: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func seriesOf(s weightsJSON) map[seriesKey][]float64 {
	out := map[seriesKey][]float64{}
	for _, x := range s.Series {
		out[seriesKey{x.Route, x.Node}] = x.Weights
	}
	return out
}

// TestWeightHistoryBounded: each node keeps its last samples only, a node
// that leaves its tables loses its history, and no more than maxSeries
// nodes are followed.
func TestWeightHistoryBounded(t *testing.T) {
	var cur atomic.Pointer[route.Set]
	cur.Store(testSet(t, map[string]map[string]float64{
		"a": {"127.0.0.1:1001": 1, "127.0.0.1:1002": 3},
		"b": {"127.0.0.1:2001": 1},
	}))
	h := newWeightHistory(cur.Load, DefaultWeightPeriod, 3, DefaultWeightSeries)
	now := time.Unix(1_700_000_000, 0)
	for i := range 5 {
		h.sample(now.Add(time.Duration(i) * h.period))
	}
	snap := h.snapshot()
	got := seriesOf(snap)
	if len(got) != 3 || snap.Untracked != 0 || snap.Samples != 3 || snap.Period != "5s" || !snap.LastSample.Equal(now.Add(4*h.period)) {
		t.Fatalf("snapshot %+v", snap)
	}
	// Sorted by route, then node.
	if s := snap.Series; s[0].Node != "127.0.0.1:1001" || s[1].Node != "127.0.0.1:1002" || s[2].Route != "b" {
		t.Fatalf("order %+v", s)
	}
	// The table's weights, three samples each: the static policy weighs by
	// capacity.
	tb := cur.Load().Route("a").Table()
	for i := 0; i < tb.Len(); i++ {
		w := got[seriesKey{"a", tb.Endpoint(i).ID()}]
		if len(w) != 3 || w[0] != round4(tb.Weight(i)) || w[2] != round4(tb.Weight(i)) {
			t.Fatalf("node %s: history %v, table weight %v", tb.Endpoint(i).ID(), w, tb.Weight(i))
		}
	}
	a1, a2 := got[seriesKey{"a", "127.0.0.1:1001"}], got[seriesKey{"a", "127.0.0.1:1002"}]
	if a2[0] <= a1[0] {
		t.Fatalf("capacity 3 weighs %v, capacity 1 weighs %v", a2[0], a1[0])
	}

	// Node 2001 leaves route b, 2002 joins: 2001's history goes.
	cur.Store(testSet(t, map[string]map[string]float64{
		"a": {"127.0.0.1:1001": 1, "127.0.0.1:1002": 3},
		"b": {"127.0.0.1:2002": 1},
	}))
	h.sample(now.Add(5 * h.period))
	got = seriesOf(h.snapshot())
	if _, ok := got[seriesKey{"b", "127.0.0.1:2001"}]; ok || len(got[seriesKey{"b", "127.0.0.1:2002"}]) != 1 || len(got[seriesKey{"a", "127.0.0.1:1001"}]) != 3 {
		t.Fatalf("after a node change: %v", got)
	}

	// At most maxSeries nodes; the others are counted.
	h2 := newWeightHistory(cur.Load, DefaultWeightPeriod, DefaultWeightSamples, 2)
	h2.sample(now)
	if snap := h2.snapshot(); len(snap.Series) != 2 || snap.Untracked != 1 {
		t.Fatalf("bounded to 2: %d series, %d untracked", len(snap.Series), snap.Untracked)
	}

	// No routing state: nothing is kept.
	var none atomic.Pointer[route.Set]
	h3 := NewWeightHistory(none.Load)
	if snap := h3.snapshot(); len(snap.Series) != 0 || snap.LastSample == nil {
		t.Fatalf("without routes: %+v", snap)
	}
}

// TestWeightHistoryRun: NewWeightHistory takes the first sample; the
// loop of Run takes one at each tick and returns when its ctx ends.
func TestWeightHistoryRun(t *testing.T) {
	var cur atomic.Pointer[route.Set]
	cur.Store(testSet(t, map[string]map[string]float64{"a": {"127.0.0.1:1001": 1}}))
	h := NewWeightHistory(cur.Load)
	if snap := h.snapshot(); snap.LastSample == nil || len(snap.Series) != 1 || len(snap.Series[0].Weights) != 1 {
		t.Fatalf("no first sample: %+v", snap)
	}
	h = newWeightHistory(cur.Load, time.Hour, 3, 10)
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx, tick)
	}()
	for i := range 4 {
		tick <- time.Unix(int64(i), 0)
	}
	cancel()
	<-done // run returns once its ctx ends (the test would time out otherwise)
	if snap := h.snapshot(); len(snap.Series) != 1 || len(snap.Series[0].Weights) != 3 || snap.LastSample.Unix() != 3 {
		t.Fatalf("after 4 ticks: %+v", snap)
	}
}

// TestDur: durations read well and parse back.
func TestDur(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1500 * time.Millisecond, "1.5s"},
		{312456789 * time.Nanosecond, "312.457ms"},
		{5 * time.Minute, "5m0s"},
		{1234567 * time.Nanosecond, "1.235ms"},
		{999 * time.Nanosecond, "999ns"},
		{-2 * time.Second, "-2s"},
	} {
		got := dur(tc.d)
		if got != tc.want {
			t.Errorf("dur(%d) = %q, want %q", tc.d, got, tc.want)
		}
		if _, err := time.ParseDuration(got); err != nil {
			t.Errorf("dur(%d) = %q does not parse: %v", tc.d, got, err)
		}
	}
}
