// Package rayserve is the Ray Serve adapter and discovery source.
//
// Requests: the Serve HTTP proxy (http_options.port, default 8000) routes
// by the application's route_prefix; a multiplexed model is chosen with
// the serve_multiplexed_model_id header. Ray Serve LLM apps expose the
// OpenAI paths under their prefix with SSE streaming. The gRPC proxy
// (grpc_options.port, default 9000) routes by the "application" metadata
// key to user servicers.
// Health: the proxy answers GET /-/healthz (200 "success") and
// GET /-/routes (route table); a draining proxy answers 503 on /-/healthz.
// Load: the metrics export port (ray start --metrics-export-port):
// ray_serve_replica_processing_queries (running) and
// ray_serve_deployment_queued_queries (waiting). vLLM under Ray Serve LLM
// exports ray_vllm:* which the vllm adapter reads.
//
// Discovery: the dashboard (default :8265) Serve REST API
// GET /api/serve/applications/ lists applications → deployments →
// replicas with node ids and IPs, and the proxies per node; ParseApplications
// and Discover turn it into a Cluster so a Ray Serve cluster can be routed
// to without our agent on every node. Ascend NPUs appear to Ray as the
// custom resource "NPU" (ray_actor_options.resources.NPU).
//
// Everything here is stateless and safe for concurrent use.
package rayserve
