package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Metric names per dialect, as the engines export them. Sources (read for
// this code; the engines/<engine> adapters cite their own):
//
//   - vLLM V1: vllm-project/vllm vllm/v1/metrics/loggers.py @
//     005a810bc40faa25b8870fbc8559c3462581eee3 (PrometheusStatLogger:
//     labels model_name and engine; vllm:kv_cache_usage_perc, deprecated
//     vllm:gpu_cache_usage_perc, counters vllm:prefix_cache_queries and
//     vllm:prefix_cache_hits exposed with the _total suffix,
//     vllm:lora_requests_info with labels max_lora, waiting_lora_adapters,
//     running_lora_adapters set to the current time).
//   - SGLang: sgl-project/sglang python/sglang/srt/metrics/collector.py @
//     00ae9c1590d2d0bb6c0bfff39e312c34ae3dd538 (sglang:num_running_reqs,
//     sglang:num_queue_reqs, sglang:token_usage, sglang:cache_hit_rate);
//     labels as in the v0.5.10 capture engines/testdata/fixtures/sglang.
//   - Triton TensorRT-LLM backend: the metrics block of the
//     tensorrtllm_backend README (Triton user guide, "Triton Metrics"):
//     nv_trt_llm_request_metrics{request_type=waiting|context|scheduled|max|active}
//     and nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction|tokens_per|used|free|max}.
//     Triton's own nv_inference_pending_request_count stays 0 with that
//     backend (it takes requests off Triton's queue), as here.
//   - trtllm-serve: NVIDIA/TensorRT-LLM tensorrt_llm/metrics/collector.py
//     (MetricsCollector, prefix trtllm_, labels model_name and
//     engine_type="trtllm") served on /prometheus/metrics
//     (examples/serve/prometheus_metrics.py @
//     47d640ec77b8bbb9c1f0faa5b8fd4e74657a167c); /metrics answers the
//     JSON iteration stats (numActiveRequests, numQueuedRequests,
//     kvCacheStats).

// kvBlocksPerSlot is the KV blocks one slot's sequence may use, for the
// dialects that report blocks (TensorRT-LLM).
const kvBlocksPerSlot = 32

// expo writes the Prometheus text exposition format.
type expo struct{ w io.Writer }

func (e expo) family(name, typ, help string) {
	if help != "" {
		fmt.Fprintf(e.w, "# HELP %s %s\n", name, help)
	}
	fmt.Fprintf(e.w, "# TYPE %s %s\n", name, typ)
}

// sample writes name{labels} v with the labels sorted by name.
func (e expo) sample(name string, v float64, kv ...string) {
	fmt.Fprint(e.w, name)
	if len(kv) > 0 {
		type pair struct{ k, v string }
		ps := make([]pair, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			ps = append(ps, pair{kv[i], kv[i+1]})
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].k < ps[j].k })
		fmt.Fprint(e.w, "{")
		for i, p := range ps {
			if i > 0 {
				fmt.Fprint(e.w, ",")
			}
			fmt.Fprintf(e.w, "%s=%s", p.k, strconv.Quote(p.v))
		}
		fmt.Fprint(e.w, "}")
	}
	fmt.Fprintf(e.w, " %s\n", strconv.FormatFloat(v, 'g', -1, 64))
}

// gauge writes a one-sample family.
func (e expo) gauge(name, help string, v float64, kv ...string) {
	e.family(name, "gauge", help)
	e.sample(name, v, kv...)
}

// counter writes a one-sample counter family (name ends in _total).
func (e expo) counter(name, help string, v float64, kv ...string) {
	e.family(name, "counter", help)
	e.sample(name, v, kv...)
}

// share is rank i's part of total split over n ranks (lower ranks take
// the remainder).
func share(total int64, n, i int) int64 {
	s := total / int64(n)
	if int64(i) < total%int64(n) {
		s++
	}
	return s
}

// loadSnapshot is what every dialect reports.
type loadSnapshot struct {
	running, waiting, prefilling int64
	slots                        int
	kv                           float64 // running / slots
	queries, hits                int64   // prefix cache, tokens
	blockTokens                  int
	served, prompt, generated    int64
	sleepLevel                   int // vLLM sleep mode: 0 awake
}

func (n *Node) snapshot() loadSnapshot {
	s := loadSnapshot{running: n.running.Load(), waiting: n.waiting.Load(), prefilling: n.prefilling.Load(),
		slots: cap(n.slots), queries: n.prefixQueries.Load(), hits: n.prefixHits.Load(),
		served: n.served.Load(), prompt: n.promptTokens.Load(), generated: n.genTokens.Load(), blockTokens: 16,
		sleepLevel: n.SleepLevel()}
	s.kv = min(float64(s.running)/float64(s.slots), 1)
	if n.cfg.PrefixCache.BlockTokens > 0 {
		s.blockTokens = n.cfg.PrefixCache.BlockTokens
	}
	return s
}

func (s loadSnapshot) hitRate() float64 {
	if s.queries == 0 {
		return 0
	}
	return float64(s.hits) / float64(s.queries)
}

func (n *Node) metrics(ctx *fasthttp.RequestCtx) {
	if n.cfg.Engine == "trtllm-serve" {
		n.trtllmIterationStats(ctx)
		return
	}
	n.metricsText(ctx)
}

// metricsText writes the Prometheus exposition of the node's dialect.
func (n *Node) metricsText(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	e := expo{ctx}
	s := n.snapshot()
	m := n.cfg.Model
	switch n.cfg.Engine {
	case "sglang":
		l := []string{"model_name", m, "tp_rank", "0"}
		e.gauge("sglang:num_running_reqs", "The number of running requests.", float64(s.running), l...)
		e.gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.", float64(s.waiting), l...)
		e.gauge("sglang:token_usage", "The token usage.", s.kv, l...)
		e.gauge("sglang:gen_throughput", "The generation throughput (token/s).", 0, l...)
		e.gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", s.hitRate(), l...)
	case "tgi":
		e.gauge("tgi_batch_current_size", "", float64(s.running))
		e.gauge("tgi_queue_size", "", float64(s.waiting))
		e.counter("tgi_request_success", "", float64(s.served))
	case "triton":
		l := []string{"model", m, "version", "1"}
		e.gauge("nv_inference_pending_request_count", "Instantaneous number of pending requests awaiting execution per-model.", float64(s.waiting), l...)
		e.counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes", float64(s.served), l...)
		e.counter("nv_inference_count", "Number of inferences performed (does not include cached requests)", float64(s.served), l...)
	case "triton-trtllm":
		n.tritonTRTLLM(e, s)
	case "trtllm-serve":
		n.trtllmServe(e, s)
	case "mindie":
		l := []string{"model_name", m}
		e.gauge("num_requests_running", "", float64(s.running), l...)
		e.gauge("num_requests_waiting", "", float64(s.waiting), l...)
		e.gauge("num_requests_swapped", "", 0, l...)
		e.gauge("npu_cache_usage_perc", "", s.kv, l...)
		e.counter("request_success_total", "", float64(s.served), l...)
		e.counter("generation_tokens_total", "", float64(s.generated), l...)
	default:
		n.vllm(e, s)
	}
	e.gauge("switchyard_sim_slowdown", "Current slowdown factor of the simulated node.", n.Slowdown(), "node", n.id)
}

// vllm writes the vLLM V1 families, one series per engine core.
func (n *Node) vllm(e expo, s loadSnapshot) {
	dp := n.cfg.DataParallel
	m := n.cfg.Model
	perEngine := func(name, typ, help string, v func(i int) float64) {
		e.family(name, typ, help)
		for i := 0; i < dp; i++ {
			e.sample(name, v(i), "model_name", m, "engine", strconv.Itoa(i))
		}
	}
	kv := func(i int) float64 {
		slots := max(share(int64(s.slots), dp, i), 1)
		return min(float64(share(s.running, dp, i))/float64(slots), 1)
	}
	perEngine("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", func(i int) float64 { return float64(share(s.running, dp, i)) })
	perEngine("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", func(i int) float64 { return float64(share(s.waiting, dp, i)) })
	perEngine("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.", kv)
	e.family("vllm:engine_sleep_state", "gauge", "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.")
	for i := 0; i < dp; i++ {
		for _, st := range sleepStates(s.sleepLevel) {
			e.sample("vllm:engine_sleep_state", st.v, "engine", strconv.Itoa(i), "model_name", m, "sleep_state", st.state)
		}
	}
	perEngine("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv)
	perEngine("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.", func(i int) float64 { return float64(share(s.queries, dp, i)) })
	perEngine("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.", func(i int) float64 { return float64(share(s.hits, dp, i)) })
	perEngine("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", func(i int) float64 { return float64(share(s.prompt, dp, i)) })
	perEngine("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", func(i int) float64 { return float64(share(s.generated, dp, i)) })
	e.family("vllm:request_success_total", "counter", "Count of successfully processed requests.")
	for i := 0; i < dp; i++ {
		e.sample("vllm:request_success_total", float64(share(s.served, dp, i)), "model_name", m, "engine", strconv.Itoa(i), "finished_reason", "length")
	}
	if n.lora != nil {
		e.family("vllm:lora_requests_info", "gauge", "Running stats on lora requests.")
		maxLoRA := strconv.Itoa(n.cfg.LoRA.MaxLoRAs)
		for _, ser := range n.lora.seriesSnapshot() {
			e.sample("vllm:lora_requests_info", float64(ser.At.UnixNano())/1e9,
				"max_lora", maxLoRA, "waiting_lora_adapters", ser.Waiting, "running_lora_adapters", ser.Running)
		}
	}
}

// kvBlocks is the TensorRT-LLM block view of the KV usage.
func (s loadSnapshot) kvBlocks() (maxBlocks, used, free int64) {
	maxBlocks = int64(s.slots * kvBlocksPerSlot)
	used = min(s.running*kvBlocksPerSlot, maxBlocks)
	return maxBlocks, used, maxBlocks - used
}

// tritonTRTLLM writes Triton's metrics with the TensorRT-LLM backend.
func (n *Node) tritonTRTLLM(e expo, s loadSnapshot) {
	m := n.cfg.Model
	req := func(typ string, v int64) {
		e.sample("nv_trt_llm_request_metrics", float64(v), "model", m, "request_type", typ, "version", "1")
	}
	e.family("nv_trt_llm_request_metrics", "gauge", "TRT LLM request metrics")
	req("waiting", s.waiting)
	req("context", s.prefilling)
	req("scheduled", s.running)
	req("max", int64(s.slots))
	req("active", s.running)
	maxB, used, free := s.kvBlocks()
	kvb := func(typ string, v float64) {
		e.sample("nv_trt_llm_kv_cache_block_metrics", v, "kv_cache_block_type", typ, "model", m, "version", "1")
	}
	e.family("nv_trt_llm_kv_cache_block_metrics", "gauge", "TRT LLM KV cache block metrics")
	kvb("fraction", float64(used)/float64(maxB))
	kvb("tokens_per", float64(s.blockTokens))
	kvb("used", float64(used))
	kvb("free", float64(free))
	kvb("max", float64(maxB))
	l := []string{"model", m, "version", "1"}
	e.counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes", float64(s.served), l...)
	e.counter("nv_inference_count", "Number of inferences performed (does not include cached requests)", float64(s.served), l...)
	// The backend takes requests off Triton's queue at once.
	e.gauge("nv_inference_pending_request_count", "Instantaneous number of pending requests awaiting execution per-model.", 0, l...)
}

// trtllmServe writes trtllm-serve's /prometheus/metrics families.
func (n *Node) trtllmServe(e expo, s loadSnapshot) {
	l := []string{"engine_type", "trtllm", "model_name", n.cfg.Model}
	maxB, used, free := s.kvBlocks()
	hitBlocks := s.hits / int64(s.blockTokens)
	missBlocks := s.queries/int64(s.blockTokens) - hitBlocks
	e.gauge("trtllm_num_requests_running", "Number of active requests", float64(s.running), l...)
	e.gauge("trtllm_num_requests_waiting", "Number of queued requests", float64(s.waiting), l...)
	e.gauge("trtllm_max_num_active_requests", "Maximum number of active requests", float64(s.slots), l...)
	e.gauge("trtllm_kv_cache_utilization", "KV cache utilization", float64(used)/float64(maxB), l...)
	e.gauge("trtllm_kv_cache_max_blocks", "", float64(maxB), l...)
	e.gauge("trtllm_kv_cache_used_blocks", "", float64(used), l...)
	e.gauge("trtllm_kv_cache_free_blocks", "", float64(free), l...)
	e.gauge("trtllm_kv_cache_tokens_per_block", "", float64(s.blockTokens), l...)
	e.gauge("trtllm_kv_cache_hit_rate", "KV cache hit rate", s.hitRate(), l...)
	e.counter("trtllm_kv_cache_reused_blocks_total", "Cumulative number of KV cache blocks reused (cache hits)", float64(hitBlocks), l...)
	e.counter("trtllm_kv_cache_missed_blocks_total", "Cumulative number of KV cache blocks missed (cache misses)", float64(max(missBlocks, 0)), l...)
	e.counter("trtllm_prompt_tokens_total", "Cumulative number of prompt (input) tokens processed.", float64(s.prompt), l...)
	e.counter("trtllm_generation_tokens_total", "Cumulative number of generation (output) tokens produced.", float64(s.generated), l...)
	e.counter("trtllm_request_success_total", "Count of successfully processed requests.", float64(s.served), append(l, "finished_reason", "length")...)
}

// trtllmIterationStats answers trtllm-serve's GET /metrics: a JSON array
// of recent iteration stats (here one, describing now).
func (n *Node) trtllmIterationStats(ctx *fasthttp.RequestCtx) {
	s := n.snapshot()
	maxB, used, free := s.kvBlocks()
	b, _ := json.Marshal([]map[string]any{{
		"numActiveRequests":    s.running,
		"numQueuedRequests":    s.waiting,
		"maxNumActiveRequests": s.slots,
		"kvCacheStats": map[string]any{"maxNumBlocks": maxB, "usedNumBlocks": used, "freeNumBlocks": free,
			"tokensPerBlock": s.blockTokens, "cacheHitRate": s.hitRate()},
	}})
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
