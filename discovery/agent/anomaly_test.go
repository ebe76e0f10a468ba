package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/probe"
)

// lockedBuffer is a bytes.Buffer a logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines written so far and forgets them.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(&l.b)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	l.b.Reset()
	return out
}

// TestProbeAnomaliesLogged (issue 13): an engine whose exporter reports a
// KV-cache usage of 1.2 (a percentage, say) keeps its other values in
// the heartbeat, and the anomaly is logged at warning level once a
// minute however often it repeats, the repeats counted; a second,
// different anomaly is logged at once; a value the agent clamps is
// logged too.
func TestProbeAnomaliesLogged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var text atomic.Value
	text.Store("vllm:num_requests_running 3\nvllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 1.2\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(text.Load().(string)))
	}))
	defer srv.Close()
	p, err := probe.New(probe.Config{Engine: "vllm", MetricsURL: srv.URL, NoTools: true, CPUInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	src := ProbeSource{Prober: p, Anomalies: newAnomalyLog(slog.New(slog.NewJSONHandler(&logs, nil)), time.Minute, clock)}

	load := func() discovery.Load {
		t.Helper()
		l, err := src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := load()
	if l.Running != discovery.Known(3) || l.Waiting != discovery.Known(4) || l.KVCacheUsage.IsKnown() {
		t.Fatalf("load %+v: want running 3, waiting 4, KV unknown", l)
	}
	got := logs.lines(t)
	if len(got) != 1 || got[0]["level"] != "WARN" || got[0]["engine"] != "vllm" || got[0]["anomaly"] != "vllm:kv_cache_usage_perc = 1.2: fraction outside 0..1, dropped" {
		t.Fatalf("first sample logged %v, want one warning naming the series and value", got)
	}
	// The same series out of range, another value: the same anomaly.
	text.Store("vllm:num_requests_running 3\nvllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 1.3\n")
	for range 3 {
		advance(15 * time.Second)
		load()
	}
	if got := logs.lines(t); len(got) != 0 {
		t.Fatalf("within the minute: logged %v, want nothing", got)
	}
	advance(16 * time.Second)
	load()
	got = logs.lines(t)
	if len(got) != 1 || got[0]["repeats_not_logged"] != float64(3) {
		t.Fatalf("after the minute: logged %v, want one warning with 3 repeats not logged", got)
	}
	// A different anomaly is logged at once.
	text.Store("vllm:num_requests_running -1\nvllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 1.3\n")
	load()
	got = logs.lines(t)
	if len(got) != 1 || got[0]["anomaly"] != "vllm:num_requests_running = -1: not a count, dropped" {
		t.Fatalf("a new anomaly: logged %v", got)
	}
	// A value the agent clamps.
	src.value("concurrency", engines.Known(2*discovery.MaxConcurrency), 0, discovery.MaxConcurrency)
	got = logs.lines(t)
	if len(got) != 1 || got[0]["field"] != "concurrency" || got[0]["msg"] != "agent: value out of range; clamped" {
		t.Fatalf("clamped concurrency: logged %v", got)
	}
	var none *AnomalyLog
	none.clamped("x", 2, 0, 1) // a nil log logs nothing and does not panic
}

// TestAnomalyLogBounded: a flood of distinct anomalies is remembered up
// to maxAnomalyKeys.
func TestAnomalyLogBounded(t *testing.T) {
	var logs lockedBuffer
	now := time.Unix(1_800_000_000, 0)
	a := newAnomalyLog(slog.New(slog.NewJSONHandler(&logs, nil)), time.Minute, func() time.Time { return now })
	for i := range 3 * maxAnomalyKeys {
		a.clamped("f"+strconv.Itoa(i), 2, 0, 1)
	}
	if n := len(a.seen); n > maxAnomalyKeys {
		t.Errorf("%d anomalies remembered, bound %d", n, maxAnomalyKeys)
	}
	if n := len(logs.lines(t)); n != 3*maxAnomalyKeys {
		t.Errorf("%d logged, want %d distinct", n, 3*maxAnomalyKeys)
	}
}
