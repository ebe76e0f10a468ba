// Package sim is a simulated inference engine: a real server that speaks
// the protocols of the engines Switchyard fronts, with the performance of
// a chosen card profile, for tests, the demo and the benchmarks.
//
// # Protocols
//
// HTTP (fasthttp), on Config.Listen:
//
//   - POST /v1/chat/completions and /v1/completions (OpenAI-compatible;
//     "model" must be Config.Model or empty). With "stream": true the
//     answer is SSE: `data: {chunk}\n\n` per token, a final chunk with
//     finish_reason and usage, a usage-only chunk (choices: []) when
//     stream_options.include_usage is set, then `data: [DONE]\n\n`.
//
//   - GET /v1/models.
//
//   - KServe v2: POST /v2/models/{name}[/versions/{v}]/infer (input
//     "text_input" BYTES, parameters.max_tokens; output "text_output"),
//     GET /v2/models/{name}, /v2/models/{name}/ready, /v2/health/live,
//     /v2/health/ready, /v2.
//
//   - GET /metrics in vLLM style: vllm:num_requests_running,
//     vllm:num_requests_waiting, vllm:gpu_cache_usage_perc (running/slots),
//     token and request counters, all labelled model_name. Config.Engine
//     switches to the SGLang, TGI, Triton or MindIE dialect (the names
//     the engines/<engine> adapters read); with "mindie",
//     /v2/health/ready answers 503 while every slot is busy.
//
//   - GET /health: 200, or 503 while starting (slow start) or draining.
//
//   - Control (works in every mode): GET /_sim/stats, POST
//     /_sim/slowdown?factor=F, /_sim/error-rate?p=P,
//     /_sim/fail?mode=healthy|hang|error|slow-start, /_sim/drain,
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
// taking Prefill then PerToken per output token, scaled by the slowdown
// factor (SetSlowdown, the noisy neighbour). Requests beyond Slots wait
// in a queue of QueueDepth; beyond that they get 429 (gRPC
// ResourceExhausted). Slots = round(SlotsPerCoefficient × Coefficient ×
// Cards) with the coefficient from engines/capacity, so a card with
// twice the coefficient sustains about twice the throughput at the same
// latency. Built-in profiles: h100, a10, 910b, cpu (LookupProfile).
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
// inference with 500 while health stays 200; Fail(ModeSlowStart)
// restarts the startup delay; Fail(ModeHealthy) recovers. Crash() closes
// the listeners and resets every connection. Drain() refuses new
// requests with 503 and lets in-flight ones finish (WaitIdle).
//
// # API (stable; used by tests, the demo and bench)
//
//	n, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Model: "m", Profile: "h100"})
//	n.Addr(); n.URL(); n.GRPCAddr(); n.ID()
//	n.SetSlowdown(2); n.SetErrorRate(0.1); n.Fail(sim.ModeHang); n.Crash(); n.Drain(); n.WaitIdle(ctx)
//	n.Stats(); n.Close()
//	fleet, err := sim.StartFleet(ctx, fc) // fc from sim.LoadFleet("fleet.yaml")
//
// A Node is safe for concurrent use. The package never imports
// Switchyard code outside engines/.
package sim
