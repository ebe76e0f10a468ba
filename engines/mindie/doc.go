// Package mindie is the Huawei MindIE Server adapter.
//
// Requests (business port, default 1025): OpenAI-compatible POST
// /v1/chat/completions and /v1/completions (model in the body, SSE with
// `data: [DONE]`), TGI-compatible /generate and /generate_stream, vLLM
// compatible /generate, and the KServe v2 /v2/models/{name}/infer and
// /v2/models/{name}/generate_stream.
// Health (management port, default 1026): GET /v2/health/live answers 200
// while the process is up; GET /v2/health/ready answers 503 not only while
// loading but also when the server is busy (its slots are full), so a 503
// on ready with a live 200 means "busy, try elsewhere", not "dead"
// (Spec.BusyOnReady503).
// Load (metrics port, default 1027, /metrics): vLLM-like names without a
// prefix: num_requests_running, num_requests_waiting,
// npu_cache_usage_perc (fraction 0..1) and npu_prefix_cache_hit_rate.
// /metrics answers only when MIES_SERVICE_MONITOR_MODE=1 was set before
// the server started. The management and metrics listeners bind
// managementIpAddress (127.0.0.2 by default), not the inference address,
// and HTTPS is on by default (httpsEnabled); engines.Scrape's errors say
// which of these is the likely cause.
//
// The dialect is data in engines/dialects.go; this package keeps Name,
// Spec and ParseLoad for callers. Stateless and safe for concurrent use.
package mindie
