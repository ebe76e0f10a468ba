// Package sim is a simulated inference engine: a real server that speaks
// the protocols of the engines Switchyard fronts, with the performance of
// a chosen card profile, for tests, the demo and the benchmarks.
//
// # Protocols
//
// HTTP (fasthttp), on Config.Listen:
//
//   - POST /v1/chat/completions and /v1/completions (OpenAI-compatible;
//     "model" must be Config.Model, empty, or a LoRA adapter). Non-streamed
//     answers always carry usage. With "stream": true the answer is SSE as
//     vLLM sends it (vllm/entrypoints/openai/serving_chat.py): `data:
//     {chunk}\n\n` per token, a final chunk with finish_reason and no
//     usage, then, only when stream_options.include_usage is true, one
//     chunk with "choices": [] and the usage, then `data: [DONE]\n\n`.
//     With a prefix cache, usage has prompt_tokens_details.cached_tokens;
//     the headers X-Sim-Cached-Tokens and X-Sim-Prefill give the cached
//     tokens and the modelled prefill time, X-Sim-LoRA the adapter.
//
//   - GET /v1/models: the base model, then the LoRA adapters (parent: the
//     base model).
//
//   - KServe v2: POST /v2/models/{name}[/versions/{v}]/infer (input
//     "text_input" BYTES, parameters.max_tokens; output "text_output"),
//     GET /v2/models/{name}, /v2/models/{name}/ready, /v2/health/live,
//     /v2/health/ready, /v2.
//
//   - GET /metrics in the dialect of Config.Engine (see metrics.go for the
//     upstream sources of every name). Every dialect exposes the node's
//     running requests, its internal queue as waiting, and KV usage
//     (running/slots):
//     vllm (V1): vllm:num_requests_running, vllm:num_requests_waiting,
//     vllm:kv_cache_usage_perc and the deprecated vllm:gpu_cache_usage_perc,
//     vllm:engine_sleep_state,
//     vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total, token
//     and request counters, labelled model_name and engine (one series per
//     DataParallel rank); vllm:lora_requests_info{max_lora,
//     running_lora_adapters, waiting_lora_adapters} (value: the time the
//     label set was last current; old label sets stay, as in vLLM) with
//     LoRA. sglang: sglang:num_running_reqs, sglang:num_queue_reqs,
//     sglang:token_usage, sglang:cache_hit_rate (cumulative hits/queries).
//     tgi: tgi_batch_current_size, tgi_queue_size. triton:
//     nv_inference_pending_request_count. triton-trtllm:
//     nv_trt_llm_request_metrics{request_type=waiting|context|scheduled|max|active},
//     nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction|tokens_per|used|free|max},
//     and nv_inference_pending_request_count 0 (the backend empties
//     Triton's queue). trtllm-serve: GET /prometheus/metrics with
//     trtllm_num_requests_running, trtllm_num_requests_waiting,
//     trtllm_kv_cache_utilization, block counts and trtllm_kv_cache_hit_rate
//     (labels model_name, engine_type="trtllm"); its GET /metrics is JSON
//     iteration stats. mindie: num_requests_running, num_requests_waiting,
//     npu_cache_usage_perc; /v2/health/ready answers 503 while every slot
//     is busy.
//
//   - GET /health: 200, or 503 while starting (slow start) or draining.
//
//   - vLLM's sleep mode (vllm dialect; its dev-mode endpoints, see
//     sleep.go): POST /sleep?level=1|2, POST /wake_up, GET /is_sleeping.
//     vllm:engine_sleep_state{engine,model_name,sleep_state=awake|
//     weights_offloaded|discard_all} reports it per engine; while asleep
//     inference is refused with 503 and /health stays 200. Go API:
//     Sleep(level), WakeUp, SleepLevel.
//
//   - Control (works in every mode): GET /_sim/stats, POST
//     /_sim/slowdown?factor=F, /_sim/error-rate?p=P,
//     /_sim/fail?mode=healthy|hang|error|slow-start|busy|cut, /_sim/drain,
//     /_sim/undrain, /_sim/crash.
//
// Every response carries X-Sim-Node: the node id (gRPC: the x-sim-node
// header metadata).
//
// gRPC, on Config.GRPCListen: inference.GRPCInferenceService with
// ServerLive, ServerReady, ModelReady, ServerMetadata, ModelInfer and the
// bidirectional ModelStreamInfer (parameter stream=true gives one
// response per token and a final one with triton_final_response=true).
// Messages are encoded by engines/kserve; clients may use generated
// Triton stubs or kserve.Codec.
//
// # Performance model
//
// A Profile has Slots concurrent sequences (continuous batching), each
// taking a prefill of Prefill + PrefillPerToken × uncached prompt tokens,
// then PerToken per output token, all scaled by the slowdown factor
// (SetSlowdown, the noisy neighbour). Requests beyond Slots wait
// in a queue of QueueDepth; beyond that they get 429 (gRPC
// ResourceExhausted). Slots = round(SlotsPerCoefficient × Coefficient ×
// Cards) with the coefficient from engines/capacity, so a card with
// twice the coefficient sustains about twice the throughput at the same
// latency. Built-in profiles: h100, a10, 910b, cpu (LookupProfile).
//
// Tokens are counted by one rule everywhere (usage, cache, prefill): a
// text of B bytes is ceil(B/4) tokens (CharsPerToken). A chat prompt is
// rendered as "role\ncontent\n" per message, so each turn of a
// conversation extends the previous turn's text.
//
// Prefix cache (Config.PrefixCache, issue 14): KV blocks of BlockTokens
// tokens, named by a hash chained over the prompt text, in an LRU of
// Blocks blocks per node. At admission the longest run of cached leading
// blocks is looked up (never the prompt's last token, as in vLLM); after
// the prefill the prompt's blocks are cached, and after a chat answer the
// blocks of prompt + reply, so the next turn hits them. A prompt's tail
// blocks are evicted before its head (vLLM frees blocks tail first).
// Hits and queries (in tokens) are reported as vllm:prefix_cache_* and
// sglang:cache_hit_rate.
//
// LoRA (Config.LoRA, issue 14): a request naming an adapter (a listed
// name or any name with the configured prefix) needs it in one of
// MaxLoRAs slots: loaded ones are used at once; otherwise the least
// recently used idle adapter is evicted and the new one loaded (LoadTime);
// with every slot busy the request waits, counted as waiting. OpenAI
// endpoints only.
//
// A streaming request whose client goes away frees its slot at the next
// token; a non-streaming one keeps its slot until it has finished (the
// sim does not watch idle connections).
//
// Waiting uses one time.Timer per running request and no busy loops, so
// one process hosts dozens of nodes cheaply.
//
// # Failure modes
//
// SetErrorRate(p) fails that fraction of inference requests with 500;
// Fail(ModeHang) accepts and never answers; Fail(ModeError) answers
// inference with 500 while health stays 200; Fail(ModeBusy) answers it
// with 429 and Retry-After: BusyRetryAfter (7 s), health 200;
// Fail(ModeCut) closes every streamed answer's connection once half its
// tokens are written (no finish chunk, no [DONE]; the last tokens written
// may not reach the wire), counted as Stats.Cut; Fail(ModeSlowStart)
// restarts the startup delay; Fail(ModeHealthy) recovers. Crash() closes
// the listeners and resets every connection. Drain() refuses new
// requests with 503 and lets in-flight ones finish (WaitIdle).
//
// # Ray mode (issue 13)
//
// StartRay (or a fleet YAML "ray" section, RayConfig) runs a simulated
// Ray Serve cluster on loopback: each Ray node has an IP of its own
// (127.0.0.N by default; Linux routes all of 127/8 to lo), its Serve HTTP
// proxy listens on that IP at the shared http_options.port, and its
// metrics export endpoint at a shared metrics port. A stand-in dashboard
// serves GET /api/serve/applications/ in the shape of Ray's
// ServeInstanceDetails (python/ray/serve/schema.py): controller_info,
// proxy_location, http_options, grpc_options, proxies{node_id: {node_id,
// node_ip, status}}, applications{name: {route_prefix, status,
// deployments{name: {deployment_config.ray_actor_options, replicas[{
// node_id, node_ip, replica_id, state}]}}, deployment_topology}}.
//
// A proxy answers /-/healthz and /-/routes and routes every other path by
// the longest matching route_prefix (stripped before forwarding), to the
// RUNNING replica of that app with the fewest ongoing requests on its own
// node, else anywhere; at max_ongoing_requests per replica it queues the
// request. Replicas are sim Nodes (the app's "replica" Config). The node
// metrics endpoint exports ray_serve_replica_processing_queries and
// ray_serve_deployment_queued_queries.
//
// Control (Go API and POST /_sim/ray/... on the dashboard): AddReplica,
// RemoveReplica (STOPPING, then gone), SetReplicaState, SetAppStatus,
// SetProxyStatus, StopProxy/StartProxy, SetDashboardStatus (answer an
// error code) and SetDashboardDown (listener closed). proxy_location
// HeadOnly runs one proxy, on the head; Disabled none. With a token the
// dashboard requires "Authorization: Bearer TOKEN".
//
// # API (stable; used by tests, the demo and bench)
//
//	n, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Model: "m", Profile: "h100"})
//	n.Addr(); n.URL(); n.GRPCAddr(); n.ID()
//	n.SetSlowdown(2); n.SetErrorRate(0.1); n.Fail(sim.ModeHang); n.Crash(); n.Drain(); n.WaitIdle(ctx)
//	n.Stats(); n.Close()     // Stats has prefix-cache and LoRA counters too
//	fleet, err := sim.StartFleet(ctx, fc) // fc from sim.LoadFleet("fleet.yaml")
//	ray := fleet.Ray()                     // or sim.StartRay(ctx, sim.RayConfig{...})
//	ray.DashboardURL(); ray.ProxyAddr("node-1"); ray.Replicas("llm")
//	id, _ := ray.AddReplica(ctx, "llm", "node-1"); ray.SetReplicaState(id, sim.RayStopping)
//	ray.StopProxy("node-1"); ray.SetDashboardDown(ctx, true)
//
// A Node and a RayCluster are safe for concurrent use. The package never imports
// Switchyard code outside engines/.
package sim
