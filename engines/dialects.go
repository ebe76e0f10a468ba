package engines

// The dialect table: every engine Switchyard reads, as data. Sources are
// cited as repository path @ commit (the version read).

// src is shorthand for a plain Source.
func src(family string) Source { return Source{Family: family} }

// sig builds a Signal of plain families.
func sig(families ...string) Signal {
	s := make(Signal, len(families))
	for i, f := range families {
		s[i] = src(f)
	}
	return s
}

// openAI is the OpenAI-compatible request surface shared by several
// engines.
var openAI = []Endpoint{
	{Method: "POST", Path: "/v1/chat/completions", Model: ModelInBody, Stream: StreamSSE},
	{Method: "POST", Path: "/v1/completions", Model: ModelInBody, Stream: StreamSSE},
	{Method: "GET", Path: "/v1/models", Stream: StreamNone},
}

var dialects = []*Dialect{vllmDialect, sglangDialect, tgiDialect, tritonDialect, mindieDialect, rayServeDialect, trtllmServeDialect}

// vLLM. Names and labels: vllm-project/vllm vllm/v1/metrics/loggers.py
// (PrometheusStatLogger: labelnames ["model_name", "engine"], one series
// per data-parallel engine; vllm:engine_sleep_state with a sleep_state
// label awake|weights_offloaded|discard_all, "awake = 0 means engine is
// sleeping"; vllm:kv_cache_usage_perc, which replaced
// vllm:gpu_cache_usage_perc in 0.9; vllm:prefix_cache_hits/queries
// counters; vllm:lora_requests_info{max_lora,running_lora_adapters,
// waiting_lora_adapters} set to the current time) and
// docs/design/metrics.md @ 0328b592a3d35f9b4dc5549d2a3fb8d1531c8e5f.
// Under Ray Serve LLM the same metrics go through
// vllm/v1/metrics/ray_wrappers.py @ 02579a5f38c5ed5211c01da7207a5c6fbc921423,
// whose _get_sanitized_opentelemetry_name replaces ':' with '_', and Ray
// prefixes "ray_": ray_vllm_num_requests_running (older Ray exported
// ray_vllm:num_requests_running), with a ReplicaId label per replica.
var vllmDialect = &Dialect{
	Name:    "vllm",
	Aliases: []string{"ray_vllm", "ray-vllm"},
	Spec: Spec{
		DefaultPort: 8000,
		Endpoints: append(append([]Endpoint{}, openAI[:2]...),
			Endpoint{Method: "POST", Path: "/v1/embeddings", Model: ModelInBody, Stream: StreamNone}, openAI[2]),
		MetricsPath: "/metrics",
		LivePath:    "/health",
		ReadyPath:   "/health",
		Notes:       "a sleeping engine (POST /sleep) still answers /health 200; vllm:engine_sleep_state says it is asleep",
	},
	ModelLabels:   []string{"model_name"},
	Running:       sig("vllm:num_requests_running", "ray_vllm:num_requests_running", "ray_vllm_num_requests_running"),
	Waiting:       sig("vllm:num_requests_waiting", "ray_vllm:num_requests_waiting", "ray_vllm_num_requests_waiting"),
	KVCache:       sig("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "ray_vllm:kv_cache_usage_perc", "ray_vllm_kv_cache_usage_perc", "ray_vllm:gpu_cache_usage_perc", "ray_vllm_gpu_cache_usage_perc"),
	PrefixHits:    sig("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits", "ray_vllm_prefix_cache_hits_total", "ray_vllm_prefix_cache_hits"),
	PrefixQueries: sig("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries", "ray_vllm_prefix_cache_queries_total", "ray_vllm_prefix_cache_queries"),
	Sleep:         &SleepRule{Families: []string{"vllm:engine_sleep_state", "ray_vllm_engine_sleep_state"}, StateLabel: "sleep_state", Awake: "awake"},
	LoRA: &LoRARule{Families: []string{"vllm:lora_requests_info", "ray_vllm_lora_requests_info"},
		Running: "running_lora_adapters", Waiting: "waiting_lora_adapters", Max: "max_lora"},
}

// SGLang. Names: sgl-project/sglang python/sglang/srt/metrics/collector.py
// @ 00ae9c1590d2d0bb6c0bfff39e312c34ae3dd538 (sglang:num_running_reqs,
// num_queue_reqs, token_usage, cache_hit_rate). Labels: the scheduler
// metrics collector (python/sglang/srt/observability/metrics_collector.py,
// SchedulerMetricsCollectorContext.init_new) labels every series with
// model_name, engine_type, tp_rank, pp_rank, moe_ep_rank and dp_rank when
// data parallel; only attn_tp_rank 0 reports unless
// --enable-metrics-for-all-schedulers, in which case every TP rank
// reports the same batch: tp/pp/moe_ep ranks are Ranks.Same, so one rank
// per DP group counts. Without --enable-metrics /metrics is not mounted;
// GET /v1/loads (python/sglang/srt/entrypoints/v1_loads.py @
// 5b49fe622b0218973e43819b1114b3a429d797f9) gives per-DP-rank
// num_running_reqs, num_waiting_reqs, token_usage, cache_hit_rate as JSON,
// or with ?format=prometheus as sglang_<key>{dp_rank=...} gauges.
var sglangDialect = &Dialect{
	Name: "sglang",
	Spec: Spec{
		DefaultPort: 30000,
		Endpoints: append([]Endpoint{{Method: "POST", Path: "/generate", Model: ModelInServer, Stream: StreamSSE}},
			openAI...),
		MetricsPath: "/metrics",
		LivePath:    "/health",
		ReadyPath:   "/health",
		MetricsNeed: "--enable-metrics on the server (else use GET /v1/loads)",
		Notes:       "GET /health_generate runs a one-token generation: a stronger but slower readiness check",
	},
	ModelLabels:   []string{"model_name"},
	Running:       sig("sglang:num_running_reqs", "sglang_num_running_reqs"),
	Waiting:       sig("sglang:num_queue_reqs", "sglang_num_waiting_reqs"),
	KVCache:       sig("sglang:token_usage", "sglang_token_usage"),
	PrefixHitRate: sig("sglang:cache_hit_rate", "sglang_cache_hit_rate"),
	Ranks:         Ranks{Same: []string{"tp_rank", "pp_rank", "moe_ep_rank"}},
	Fallback: &JSONLoads{Path: "/v1/loads", List: "loads",
		Running: "num_running_reqs", Waiting: "num_waiting_reqs", KVCache: "token_usage", HitRate: "cache_hit_rate"},
}

// TGI: tgi_batch_current_size (running) and tgi_queue_size (waiting), as
// in DataDog/integrations-core hugging_face_tgi/tests/fixtures/payload.txt
// @ 9e390cde516b3e7468a56317d9e6eebbdebb155c. No KV-cache gauge.
var tgiDialect = &Dialect{
	Name: "tgi",
	Spec: Spec{
		DefaultPort: 80,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/generate", Model: ModelInServer, Stream: StreamNone},
			{Method: "POST", Path: "/generate_stream", Model: ModelInServer, Stream: StreamSSENoDone},
			{Method: "POST", Path: "/v1/chat/completions", Model: ModelInServer, Stream: StreamSSE},
			{Method: "GET", Path: "/info", Stream: StreamNone},
		},
		MetricsPath: "/metrics",
		LivePath:    "/health",
		ReadyPath:   "/health",
	},
	Running: sig("tgi_batch_current_size"),
	Waiting: sig("tgi_queue_size"),
}

// Triton. With the TensorRT-LLM backend the requests are taken off
// Triton's queue at once, so nv_inference_pending_request_count stays near
// 0 while the batch manager queues: read its own gauges instead.
// triton-inference-server/tensorrtllm_backend README.md @
// f526fc52d520ca2b2afc7b99581ad0db37a82c52 shows
// nv_trt_llm_request_metrics{request_type=active|max|scheduled|context|waiting}
// and nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=
// max|free|used|tokens_per|fraction}; NVIDIA/TensorRT-LLM
// triton_backend/inflight_batcher_llm/src/model_instance_state.cc @
// 0c8de69a1ca6213eebb20a51873890ff128666c2 (WaitForStats) sets
// "Waiting Requests" = numActiveRequests - numScheduledRequests, so
// scheduled is what runs and waiting what waits (the mapping llm-d uses:
// llm-d/llm-d-router pkg/epp/framework/plugins/datalayer/extractor/metrics/
// factories.go @ ebab687927f5331c1b39defcb579a07951bce56c). Plain Triton
// keeps nv_inference_pending_request_count as waiting.
var tritonDialect = &Dialect{
	Name:    "triton",
	Aliases: []string{"kserve", "triton-tensorrt-llm", "triton-trtllm"},
	Spec: Spec{
		DefaultPort: 8000,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/v2/models/{name}/infer", Model: ModelInPath, Stream: StreamNone},
			{Method: "POST", Path: "/v2/models/{name}/generate_stream", Model: ModelInPath, Stream: StreamSSENoDone},
			{Method: "GRPC", Path: "/inference.GRPCInferenceService/ModelInfer", Model: ModelInGRPCField, Stream: StreamNone},
			{Method: "GRPC", Path: "/inference.GRPCInferenceService/ModelStreamInfer", Model: ModelInGRPCField, Stream: StreamGRPC},
		},
		MetricsPath: "/metrics",
		MetricsPort: 8002,
		LivePath:    "/v2/health/live",
		ReadyPath:   "/v2/health/ready",
	},
	ModelLabels: []string{"model"},
	Running:     Signal{trtRequests("scheduled")},
	Waiting:     Signal{trtRequests("waiting"), src("nv_inference_pending_request_count")},
	KVCache: Signal{
		trtKV("fraction"),
		{Family: "nv_trt_llm_kv_cache_block_metrics", Where: map[string]string{"kv_cache_block_type": "used"}, Over: ptr(trtKV("max"))},
	},
}

func trtRequests(t string) Source {
	return Source{Family: "nv_trt_llm_request_metrics", Where: map[string]string{"request_type": t}}
}

func trtKV(t string) Source {
	return Source{Family: "nv_trt_llm_kv_cache_block_metrics", Where: map[string]string{"kv_cache_block_type": t}}
}

func ptr[T any](v T) *T { return &v }

// MindIE Server. vLLM-like names without a prefix:
// Ascend/MindIE-Motor tests/ms/common/.mindie_ms/ms_metricsSingleNodeData_0.bin
// @ 3402b1547874046499e9381169620d5956cfb8f9 and the API documentation
// sample (verylucky01/MindIE-Motor docs/zh/User_Guide/SERVICE_ORIENTED_INTERFACE/
// intra_cluster_communication_interface.md @ 2a88c0e4c660a5b0f6618b57e6c60e4140642fc8),
// which also says /metrics needs `export MIES_SERVICE_MONITOR_MODE=1`
// before start. Listeners: ServerConfig ipAddress 127.0.0.1 port 1025
// (inference), managementIpAddress 127.0.0.2 managementPort 1026 and
// metricsPort 1027, httpsEnabled true in the shipped config.json (as
// embedded by gpustack/gpustack gpustack/worker/backends/ascend_mindie.py @
// bcf93032aa0345c3346ba925c2f6851bf9292e13); Ascend/MindIE-Motor
// tests/ms/dt/common/mindie_server/MindIEServer.cpp @
// 5dfb024e45feec2e947f12d0af72b79b24edff53 serves /metrics on the metric
// port of the management address.
var mindieDialect = &Dialect{
	Name: "mindie",
	Spec: Spec{
		DefaultPort: 1025,
		Endpoints: []Endpoint{
			openAI[0], openAI[1],
			{Method: "POST", Path: "/generate_stream", Model: ModelInServer, Stream: StreamSSENoDone},
			{Method: "POST", Path: "/v2/models/{name}/infer", Model: ModelInPath, Stream: StreamNone},
		},
		MetricsPath:    "/metrics",
		MetricsPort:    1027,
		HealthPort:     1026,
		ManagementAddr: "127.0.0.2",
		TLS:            true,
		MetricsNeed:    "MIES_SERVICE_MONITOR_MODE=1 in the server's environment before it starts",
		LivePath:       "/v2/health/live",
		ReadyPath:      "/v2/health/ready",
		BusyOnReady503: true,
		Notes:          "live/ready on the management port (1026), metrics on 1027, both on managementIpAddress (127.0.0.2 by default); HTTPS unless httpsEnabled is false",
	},
	ModelLabels:   []string{"model_name"},
	Running:       sig("num_requests_running"),
	Waiting:       sig("num_requests_waiting"),
	KVCache:       sig("npu_cache_usage_perc"),
	PrefixHitRate: sig("npu_prefix_cache_hit_rate"),
}

// Ray Serve proxies: ray_serve_replica_processing_queries (running) and
// ray_serve_deployment_queued_queries (waiting) on the metrics export
// port. vLLM under Ray Serve LLM is read by the vllm dialect.
var rayServeDialect = &Dialect{
	Name:    "rayserve",
	Aliases: []string{"ray-serve", "ray_serve"},
	Spec: Spec{
		DefaultPort: 8000,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "{route_prefix}/...", Model: ModelInRoute, Stream: StreamSSE},
			{Method: "GRPC", Path: "/{service}/{method} (metadata application=NAME)", Model: ModelInRoute, Stream: StreamGRPC},
		},
		MetricsPath: "/metrics",
		MetricsPort: 8080,
		LivePath:    "/-/healthz",
		ReadyPath:   "/-/healthz",
		Notes:       "discovery: dashboard GET /api/serve/applications/ on :8265",
	},
	ModelLabels: []string{"application"},
	Running:     sig("ray_serve_replica_processing_queries"),
	Waiting:     sig("ray_serve_deployment_queued_queries"),
}

// trtllm-serve (TensorRT-LLM's OpenAI server). NVIDIA/TensorRT-LLM
// tensorrt_llm/metrics/collector.py @ 050f80def8df236e326949c8bd9dee10fd896a83
// (MetricsCollector, prefix "trtllm_", labels model_name and engine_type):
// trtllm_num_requests_running = numActiveRequests,
// trtllm_num_requests_waiting = numQueuedRequests,
// trtllm_kv_cache_utilization = usedNumBlocks/maxNumBlocks, block gauges
// trtllm_kv_cache_used_blocks/max_blocks, trtllm_kv_cache_hit_rate.
// tests/unittest/llmapi/apps/_test_openai_prometheus.py @
// 07c1a796c5b163906ec500505a809cce8c6d0103 reads them at
// /prometheus/metrics (plain /metrics answers JSON iteration stats), with
// return_perf_metrics and enable_iter_perf_stats set.
var trtllmServeDialect = &Dialect{
	Name:    "trtllm-serve",
	Aliases: []string{"trtllm", "tensorrt-llm"},
	Spec: Spec{
		DefaultPort: 8000,
		Endpoints:   append([]Endpoint(nil), openAI...),
		MetricsPath: "/prometheus/metrics",
		LivePath:    "/health",
		ReadyPath:   "/health",
		MetricsNeed: "return_perf_metrics: true and enable_iter_perf_stats: true in --extra_llm_api_options",
	},
	ModelLabels: []string{"model_name"},
	Running:     sig("trtllm_num_requests_running"),
	Waiting:     sig("trtllm_num_requests_waiting"),
	KVCache: Signal{
		src("trtllm_kv_cache_utilization"),
		{Family: "trtllm_kv_cache_used_blocks", Over: ptr(src("trtllm_kv_cache_max_blocks"))},
	},
	PrefixHitRate: sig("trtllm_kv_cache_hit_rate"),
}
