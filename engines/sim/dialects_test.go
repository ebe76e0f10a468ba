package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/vllm"
)

// busy starts running requests that never finish (prefill of an hour)
// and waits until the node has want running and waiting requests.
func busy(t *testing.T, n *Node, requests int, wantRunning, wantWaiting int64) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for i := 0; i < requests; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for (n.Stats().Running != wantRunning || n.Stats().Waiting != wantWaiting) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := n.Stats(); st.Running != wantRunning || st.Waiting != wantWaiting {
		t.Fatalf("node never reached running %d waiting %d: %+v", wantRunning, wantWaiting, st)
	}
}

// scrape parses the exposition at path.
func scrape(t *testing.T, n *Node, path string) engines.Metrics {
	t.Helper()
	st, b := get(t, testCtx(t, 5*time.Second), n.URL()+path)
	if st != 200 {
		t.Fatalf("GET %s: %d %s", path, st, b)
	}
	m, err := engines.ParseMetrics(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", path, err, b)
	}
	return m
}

// value returns the one sample of name whose labels include want.
func value(t *testing.T, m engines.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, s := range m.Samples(name) {
		ok := true
		for k, v := range want {
			if s.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			found = append(found, s.Value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1 (all: %+v)", name, want, len(found), m.Samples(name))
	}
	return found[0]
}

// TestDialectNames: with one request running and one waiting, every
// dialect reports them under the engine's real metric names (and the
// node's internal queue as waiting).
func TestDialectNames(t *testing.T) {
	one := Profile{Slots: 1, QueueDepth: 4, Prefill: time.Hour}
	type check struct {
		name   string
		labels map[string]string
		want   float64
	}
	cases := []struct {
		engine, path string
		checks       []check
	}{
		{"vllm", "/metrics", []check{
			{"vllm:num_requests_running", map[string]string{"engine": "0", "model_name": "m"}, 1},
			{"vllm:num_requests_waiting", map[string]string{"engine": "0"}, 1},
			{"vllm:kv_cache_usage_perc", map[string]string{"engine": "0"}, 1},
			{"vllm:gpu_cache_usage_perc", map[string]string{"engine": "0"}, 1},
			{"vllm:prefix_cache_queries_total", map[string]string{"engine": "0"}, 1},
			{"vllm:prefix_cache_hits_total", map[string]string{"engine": "0"}, 0},
		}},
		{"sglang", "/metrics", []check{
			{"sglang:num_running_reqs", map[string]string{"model_name": "m", "tp_rank": "0"}, 1},
			{"sglang:num_queue_reqs", nil, 1},
			{"sglang:token_usage", nil, 1},
			{"sglang:cache_hit_rate", nil, 0},
		}},
		{"tgi", "/metrics", []check{{"tgi_batch_current_size", nil, 1}, {"tgi_queue_size", nil, 1}}},
		{"triton", "/metrics", []check{{"nv_inference_pending_request_count", map[string]string{"model": "m"}, 1}}},
		{"triton-trtllm", "/metrics", []check{
			{"nv_trt_llm_request_metrics", map[string]string{"request_type": "waiting", "model": "m", "version": "1"}, 1},
			{"nv_trt_llm_request_metrics", map[string]string{"request_type": "scheduled"}, 1},
			{"nv_trt_llm_request_metrics", map[string]string{"request_type": "active"}, 1},
			{"nv_trt_llm_request_metrics", map[string]string{"request_type": "context"}, 1},
			{"nv_trt_llm_request_metrics", map[string]string{"request_type": "max"}, 1},
			{"nv_trt_llm_kv_cache_block_metrics", map[string]string{"kv_cache_block_type": "fraction"}, 1},
			{"nv_trt_llm_kv_cache_block_metrics", map[string]string{"kv_cache_block_type": "max"}, kvBlocksPerSlot},
			{"nv_trt_llm_kv_cache_block_metrics", map[string]string{"kv_cache_block_type": "free"}, 0},
			// The TensorRT-LLM backend empties Triton's own queue.
			{"nv_inference_pending_request_count", nil, 0},
		}},
		{"trtllm-serve", "/prometheus/metrics", []check{
			{"trtllm_num_requests_running", map[string]string{"model_name": "m", "engine_type": "trtllm"}, 1},
			{"trtllm_num_requests_waiting", nil, 1},
			{"trtllm_kv_cache_utilization", nil, 1},
			{"trtllm_kv_cache_used_blocks", nil, kvBlocksPerSlot},
			{"trtllm_max_num_active_requests", nil, 1},
		}},
		{"mindie", "/metrics", []check{{"num_requests_running", nil, 1}, {"num_requests_waiting", nil, 1}, {"npu_cache_usage_perc", nil, 1}}},
	}
	for _, c := range cases {
		t.Run(c.engine, func(t *testing.T) {
			n := start(t, Config{Model: "m", Engine: c.engine, Override: one})
			busy(t, n, 2, 1, 1)
			m := scrape(t, n, c.path)
			for _, ch := range c.checks {
				if got := value(t, m, ch.name, ch.labels); got != ch.want {
					t.Errorf("%s%v = %g, want %g", ch.name, ch.labels, got, ch.want)
				}
			}
		})
	}
}

// TestTRTLLMServeIterationStats: trtllm-serve's GET /metrics is JSON
// iteration stats, not a Prometheus exposition.
func TestTRTLLMServeIterationStats(t *testing.T) {
	n := start(t, Config{Model: "m", Engine: "trtllm-serve", Override: Profile{Slots: 1, Prefill: time.Hour}})
	busy(t, n, 2, 1, 1)
	st, b := get(t, testCtx(t, 5*time.Second), n.URL()+"/metrics")
	var stats []struct {
		NumActiveRequests int `json:"numActiveRequests"`
		NumQueuedRequests int `json:"numQueuedRequests"`
		KVCacheStats      struct {
			MaxNumBlocks, UsedNumBlocks, FreeNumBlocks int
		} `json:"kvCacheStats"`
	}
	if err := json.Unmarshal(b, &stats); st != 200 || err != nil || len(stats) != 1 {
		t.Fatalf("GET /metrics: %d %s %v", st, b, err)
	}
	s := stats[0]
	if s.NumActiveRequests != 1 || s.NumQueuedRequests != 1 || s.KVCacheStats.MaxNumBlocks != kvBlocksPerSlot || s.KVCacheStats.FreeNumBlocks != 0 {
		t.Errorf("iteration stats %s", b)
	}
}

// TestVLLMDataParallel: with DataParallel 2 the vllm dialect has one
// series per engine core, splitting the node's requests, and the vllm
// adapter's sum over series gives the node's totals.
func TestVLLMDataParallel(t *testing.T) {
	n := start(t, Config{Model: "m", DataParallel: 2, Override: Profile{Slots: 4, QueueDepth: 8, Prefill: time.Hour}})
	busy(t, n, 7, 4, 3)
	m := scrape(t, n, "/metrics")
	for _, c := range []struct {
		name, engine string
		want         float64
	}{
		{"vllm:num_requests_running", "0", 2}, {"vllm:num_requests_running", "1", 2},
		{"vllm:num_requests_waiting", "0", 2}, {"vllm:num_requests_waiting", "1", 1},
		{"vllm:kv_cache_usage_perc", "0", 1}, {"vllm:kv_cache_usage_perc", "1", 1},
	} {
		if got := value(t, m, c.name, map[string]string{"engine": c.engine}); got != c.want {
			t.Errorf("%s{engine=%s} = %g, want %g", c.name, c.engine, got, c.want)
		}
	}
	_, b := get(t, testCtx(t, 5*time.Second), n.URL()+"/metrics")
	l, err := vllm.ParseLoad(bytes.NewReader(b))
	if err != nil || l.Running.String() != "4" || l.Waiting.String() != "3" {
		t.Errorf("vllm adapter: %+v %v", l, err)
	}
	if _, err := Start(testCtx(t, time.Second), Config{DataParallel: -1}); err == nil {
		t.Error("negative DataParallel accepted")
	}
}
