// Package config is the gateway's configuration: the YAML schema, its
// defaults and its validation. Process a config in order: parse
// (ParseConfig, LoadConfig or QuickStart), ApplyDefaults, Validate; errors
// name the field by its YAML path and wrap ErrConfig.
//
// A Config is never changed once a gateway runs with it: a reload builds a
// new one. Nothing here does I/O but LoadConfig and
// DiscoveryConfig.ReadToken.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/discovery/kubernetes"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
	"github.com/switchyard-dev/switchyard/internal/yamlerr"
)

// Config is the gateway's whole configuration. Process it in order: parse
// (ParseConfig or QuickStart), ApplyDefaults, Validate. The zero value plus
// one route is usable. A Config is never changed after a Gateway starts
// with it: a reload builds a new one.
type Config struct {
	// Listen holds the listener addresses.
	Listen ListenConfig `yaml:"listen"`
	// Limits bounds what one client or one node can take.
	Limits Limits `yaml:"limits"`
	// Discovery is the Resource tier: routes with source "resource" (the
	// default for routes without static nodes when it is set) read their
	// nodes from it.
	Discovery *DiscoveryConfig `yaml:"discovery"`
	// Ray is the Ray dashboard source: Serve applications routed by their
	// route prefix (see RayConfig). Optional.
	Ray *RayConfig `yaml:"ray"`
	// Kubernetes is the Kubernetes API source (discovery/kubernetes): the
	// apps it defines are read from EndpointSlices, Pods or
	// InferencePools, without agents. Routes read one by naming it in
	// app. Optional.
	Kubernetes *kubernetes.Config `yaml:"kubernetes"`
	// Telemetry configures tracing.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// Admin secures the admin port.
	Admin AdminConfig `yaml:"admin"`
	// Auth turns API keys on: every request must then carry a key of the
	// file (Authorization: Bearer KEY or x-api-key), which names its
	// tenant, limits, priority and models (gateway/tenant). Optional: no
	// Auth, no keys.
	Auth *tenant.Config `yaml:"auth"`
	// WeightPeriod is how often every route's table is rebuilt with fresh
	// weights. Default 3 s; at least 100 ms.
	WeightPeriod time.Duration `yaml:"weight_period"`
	// Routes are matched as described on RouteConfig.Match.
	Routes []RouteConfig `yaml:"routes"`

	// lines maps the field paths of the file LoadConfig read to their
	// YAML lines (AtLine); nil for a config built in code.
	lines map[string]int
}

// ListenConfig names the gateway's listeners.
type ListenConfig struct {
	// Client is the address clients use: HTTP/1.1, h2c and, with TLS,
	// HTTP/2 over ALPN, gRPC included. Default 127.0.0.1:8080.
	Client string `yaml:"client"`
	// Admin serves /healthz, /readyz, /metrics, /admin/* and /debug/pprof.
	// Empty disables the admin port.
	Admin string `yaml:"admin"`
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Limits bounds resource use. Zero fields take their defaults.
type Limits struct {
	// MaxConcurrent is the most requests in flight in the gateway; past
	// it requests get 503 with Retry-After. Default 10000.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxPerNode is the most requests in flight on one node of a route;
	// a full node is skipped, and when all are full the request gets 503.
	// Default 1024.
	MaxPerNode int `yaml:"max_per_node"`
	// MaxHeaderBytes bounds a request's request line plus headers; past it
	// 431. Default 16 KiB; at least 4 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body; past it 413. Default 32 MiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// StreamBodyOver: request bodies with a known Content-Length above
	// this many bytes stream to the node as they arrive instead of being
	// buffered (still bounded by MaxBodyBytes). Such requests are routed
	// without reading their body (path, host, header, KServe model path;
	// JSON bodies that routing must read are still buffered) and are
	// retried only when the connection to the node could not be opened.
	// Chunked bodies are always buffered. Default 1 MiB (at most half of
	// MaxBodyBytes); -1 buffers every body.
	StreamBodyOver int `yaml:"stream_body_over"`
	// MaxResponseBytes bounds a buffered (non-streamed) upstream response.
	// Default 64 MiB.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// ReadTimeout bounds reading one request's headers and body (slowloris
	// guard). Default 30 s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each write to a client (nginx's send_timeout):
	// a client that takes nothing for this long while the gateway has
	// bytes for it loses the connection (slow-read guard). It is not a
	// bound on a whole answer: a stream that keeps being read lives on.
	// Default 60 s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle client keep-alive connections. Default 120 s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DrainDelay is how long the gateway keeps serving after it is told
	// to stop (SIGTERM): /readyz fails at once, so load balancers and
	// endpoint controllers take it out of rotation, while requests keep
	// being served (their client connections are closed after each
	// answer); then it stops accepting and finishes in-flight requests
	// within ShutdownTimeout. Default 5 s; negative: no delay.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests
	// once the drain delay is over. Default 30 s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RetryAfter is the Retry-After sent with overload answers. Default 1 s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// MaxH2Streams is the most concurrent HTTP/2 streams per connection.
	// Default 250.
	MaxH2Streams int `yaml:"max_h2_streams"`
	// MaxBufferedBytes bounds the request bodies the gateway holds in
	// memory at once, over all requests; a request that would pass it
	// gets 503 with Retry-After. Default 256 MiB.
	MaxBufferedBytes int `yaml:"max_buffered_bytes"`
	// MaxConnections bounds open client connections; past it new ones
	// are closed at once. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP bounds open client connections from one client
	// address; past it new ones from that address are closed at once.
	// Default 0: no cap, deliberately. Behind a load balancer, an ingress
	// or a NAT every client arrives from the same few addresses, so any
	// default would refuse real users there; so would it load generators
	// and benchmarks, which open many connections from one host.
	// MaxConnections still bounds the total. Envoy and HAProxy cap none by
	// default either: Envoy limits connections only through its opt-in
	// connection_limit filter or a listener's runtime connection_limit
	// (docs: intro/arch_overview/listeners/connection_limiting), HAProxy
	// per source only with a stick-table tracking conn_cur. Set it when
	// clients connect directly.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// DiscoveryConfig points at the Resource tier.
type DiscoveryConfig struct {
	// Servers are Resource instances' host:port. Required.
	Servers []string `yaml:"servers"`
	// Token is the bearer token; TokenFile, if set, is read instead.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// TLS makes the client speak HTTPS to Resource, verifying its
	// certificates against the system roots (or CAFile). Setting CAFile,
	// CertFile or KeyFile implies it. Default off (plain HTTP).
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle of the CAs that sign the Resource instances'
	// certificates. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's PEM client certificate and
	// key, for mTLS; both or neither. They are re-read when they change
	// (a rotation half written keeps the last good pair).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the instances' certificates.
	// Default: the host of each server address.
	ServerName string `yaml:"server_name"`
}

// AdminConfig secures the admin port. /healthz, /readyz and /metrics are
// always open (probes and scrapers); the JSON admin API and pprof are
// not: a Host outside AllowedHosts is refused (DNS rebinding), actions
// (POST) need the bearer token and a JSON body (no cross-site form
// posts), and pprof needs the token and PProf.
type AdminConfig struct {
	// TokenFile holds the bearer token of admin actions and pprof (read
	// at start and on reload; never logged). Without it actions and pprof
	// are refused.
	TokenFile string `yaml:"token_file"`
	// PProf serves /debug/pprof/ (with the token). Default off.
	PProf bool `yaml:"pprof"`
	// AllowedHosts are the Host header values (without port) accepted on
	// /admin/ and /debug/. Default: localhost, 127.0.0.1, ::1 and the
	// admin listener's host.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// ReadToken returns the admin token ("" without TokenFile).
func (a *AdminConfig) ReadToken() (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("gateway: admin.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", cfgErr("admin.token_file %q: the token must have at least 16 characters", a.TokenFile)
	}
	return tok, nil
}

// TelemetryConfig configures tracing.
type TelemetryConfig struct {
	// TraceRatio is the share of root requests traced (parent-based
	// sampling: a sampled incoming traceparent is always traced). 0, the
	// default, turns tracing off and costs nothing per request.
	TraceRatio float64 `yaml:"trace_ratio"`
	// AccessLog logs every request at info level. Default off.
	AccessLog bool `yaml:"access_log"`
	// OTLPEndpoint, e.g. "http://127.0.0.1:4318", exports the sampled
	// spans over OTLP/HTTP (protobuf) to that collector, in batches (at
	// most 2,048 spans queued, the rest dropped; each export bounded by
	// 10 s), flushed when the gateway stops. The path defaults to
	// /v1/traces. With it, tracing is on even at trace_ratio 0: then
	// only requests that arrive with a sampled traceparent are traced.
	// Empty (the default) exports nothing. Read at start only (a reload
	// does not change it).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
}

// RouteConfig is one route: what it matches and where it sends requests.
type RouteConfig struct {
	// Name identifies the route in metrics and the admin API. Default: the
	// first model, else the app.
	Name string `yaml:"name"`
	// Match says which requests the route takes.
	Match MatchConfig `yaml:"match"`
	// App is the discovery application whose online list feeds the route
	// (for source ray, the Serve application's name). Default Name.
	// Ignored when Nodes is set.
	App string `yaml:"app"`
	// Source says where the route's nodes come from: "static" (Nodes),
	// "resource" (the Resource tier of the discovery block), "kubernetes"
	// (an app of the kubernetes block) or "ray" (an application of the
	// ray block's dashboard). Default: static when Nodes is set, else
	// kubernetes when the kubernetes block defines App, else resource
	// when the discovery block is set, else ray when the ray block is.
	Source string `yaml:"source"`
	// Nodes is a static node list; when empty the route reads App from
	// its Source.
	Nodes []NodeConfig `yaml:"nodes"`
	// TLS makes the gateway speak TLS to the route's nodes: HTTP/1.1 over
	// TLS, and gRPC over HTTP/2 with TLS (ALPN h2). It is implied (with
	// the defaults) by https:// and grpcs:// node URLs; a route's nodes
	// are all TLS or all plaintext. Default: none (plaintext, h2c for
	// gRPC).
	TLS *UpstreamTLS `yaml:"tls"`
	// Policy is a balancer.NamedConfig name. Default dynamic-swrr for
	// discovery routes, static-swrr for static ones.
	Policy string `yaml:"policy"`
	// Timeouts are per request.
	Timeouts Timeouts `yaml:"timeouts"`
	// Retries bounds retries on other nodes.
	Retries RetryConfig `yaml:"retries"`
	// Breaker tunes the per-node circuit breakers.
	Breaker BreakerConfig `yaml:"breaker"`
	// HealthPath is the route's health path: the half-open breaker's
	// trial GETs it (a 2xx or a 404 closes the breaker: the node answered
	// HTTP; a TCP connect is no trial), and so do the active health checks
	// unless HealthCheck.Path is set. Empty: the rule on HealthCheckConfig.
	HealthPath string `yaml:"health_path"`
	// HealthCheck configures the active health checks, on by default
	// (gateway/health).
	HealthCheck HealthCheckConfig `yaml:"health_check"`
	// Outlier configures outlier detection on the nodes' answers, on by
	// default (gateway/health).
	Outlier OutlierConfig `yaml:"outlier"`
	// Affinity prefers the node that holds a request's prompt prefix (its
	// KV cache), session or LoRA adapter, while that node's load stays
	// within a bound of the route's (balancer.Affinity). On by default.
	Affinity AffinityConfig `yaml:"affinity"`
	// Queue is the route's flow control: when every node is at
	// limits.max_per_node, requests wait in a bounded queue, interactive
	// ahead of batch and fair between tenants, until a node frees or
	// their deadline passes (gateway/flow).
	Queue QueueConfig `yaml:"queue"`
	// Stream chooses when the response is streamed to the client as it
	// arrives: "auto" (default: when the OpenAI body says "stream": true,
	// the client accepts text/event-stream, or the path ends in
	// generate_stream), "always" or "never".
	Stream string `yaml:"stream"`
	// HashHeader names the request header hashed for the ring-hash policy.
	// Default X-Session-Id.
	HashHeader string `yaml:"hash_header"`
	// AllowPaths widens the paths that reach the route's nodes. By default
	// only inference APIs do: the OpenAI API (/v1/chat/completions,
	// /v1/completions, /v1/embeddings, /v1/responses, /v1/models,
	// /v1/rerank, /v1/score, /v1/audio/transcriptions|translations), the
	// KServe v2 data plane (/v2, /v2/health/live|ready,
	// /v2/models/{name}[/versions/{v}][/infer|/ready|/generate|
	// /generate_stream]), its gRPC service's inference, readiness and
	// metadata methods, and everything under the route's ray_prefix or
	// path_prefix; engine control paths (vLLM /sleep or LoRA loading,
	// SGLang weight updates, Triton model load/unload) are refused with 404
	// unless listed here. An entry is an exact path, or a prefix ending in
	// "/" or "*". Paths are compared after normalisation.
	AllowPaths []string `yaml:"allow_paths"`
	// Split is the A/B split of issue 6 (gateway/split): each request of
	// the route is assigned a variant whose target names another route
	// (by route name or model) that serves it. Optional.
	Split *split.Config `yaml:"split"`
	// Shadow mirrors a sample of the route's traffic to its target (a
	// route name or model) and compares the answers (gateway/shadow).
	// Optional.
	Shadow *shadow.Config `yaml:"shadow"`
	// UpstreamModel is the model name the route's nodes serve. When set,
	// the "model" of an OpenAI request body is rewritten to it on the way
	// to the node, so match.models may list aliases (as Envoy AI
	// Gateway's modelNameOverride or LiteLLM's model_list). The answer is
	// passed on as the engine wrote it. KServe paths and gRPC calls are
	// not rewritten.
	UpstreamModel string `yaml:"upstream_model"`
	// Fallback sends a request this route cannot serve to another route
	// (one hop: the target's own fallback is not followed). Optional.
	Fallback *FallbackConfig `yaml:"fallback"`
	// StreamUsage is what happens to a streamed OpenAI request without
	// stream_options.include_usage: "inject" (default) asks the engine
	// for the usage event, counts its tokens and removes that event from
	// the client's stream; "pass" sends the request as it is (its tokens
	// then go uncounted).
	StreamUsage string `yaml:"stream_usage"`
	// StreamKeepAlive, when set, sends the client an SSE comment
	// (": keep-alive") after this long without a byte of a streamed
	// OpenAI answer, between events, so that proxies and load balancers on
	// the way do not close a connection while a reasoning model thinks.
	// Off by default; at least 1 s.
	StreamKeepAlive time.Duration `yaml:"stream_keepalive"`
}

// FallbackConfig is where a route's failed or refused requests go.
type FallbackConfig struct {
	// Target is a route name or model, not the route itself.
	Target string `yaml:"target"`
	// On lists what sends a request to the target: "5xx" (the nodes
	// answered 500..599 or failed before answering), "429" (the nodes
	// refused it with 429), "saturated" (every node was at
	// limits.max_per_node and the route's queue turned it away: with
	// queue.timeout the wait before that). Default all three. Only
	// requests whose body the gateway holds (not streamed request
	// bodies, not gRPC) fall back, and only before any answer byte
	// reached the client.
	On []string `yaml:"on"`
}

// Fallback triggers (FallbackConfig.On).
const (
	Fallback5xx       = "5xx"
	Fallback429       = "429"
	FallbackSaturated = "saturated"
)

// MatchConfig is a conjunction: every condition set must hold.
//
// Routes whose Match sets only Models are looked up by model name first;
// the other routes are then tried in config order; a route with the model
// "*" (and nothing else) takes whatever is left.
type MatchConfig struct {
	// Models match the OpenAI "model" field, the KServe v2 path name and
	// the gRPC ModelInferRequest.model_name. "*" matches anything.
	Models []string `yaml:"models"`
	// Adapters are LoRA adapters the route's nodes serve on top of its
	// models, as vLLM's multi-LoRA serving names them (--lora-modules
	// NAME=PATH; GET /v1/models lists each with its "parent"). An entry
	// ending in "*" matches every name with that prefix (adapters loaded
	// at run time). A request naming an adapter matches like a model and,
	// with affinity on, goes to a node that has the adapter loaded while
	// that node is within the load bound (LoRA affinity, issue 14; up to
	// affinity.max_adapter_nodes nodes per adapter). Adapters the nodes
	// report loaded (vLLM lora_requests_info) get LoRA affinity even when
	// not listed here, once the request reaches the route.
	Adapters []string `yaml:"adapters"`
	// Host matches the Host header (without port), exactly.
	Host string `yaml:"host"`
	// PathPrefix matches the request path's prefix.
	PathPrefix string `yaml:"path_prefix"`
	// RayPrefix is a Ray Serve route prefix: it matches the path when the
	// prefix is followed by "/" or the end of the path.
	RayPrefix string `yaml:"ray_prefix"`
	// Headers must all be present with exactly these values.
	Headers map[string]string `yaml:"headers"`
}

// NodeConfig is one static node. In YAML it is a URL string
// ("http://10.0.0.1:8000", "grpc://10.0.0.1:8001", "https://..." and
// "grpcs://..." over TLS, or a bare "host:port") or a mapping with id,
// http, grpc (each host:port or such a URL) and weight.
type NodeConfig struct {
	// ID defaults to HTTP (else GRPC).
	ID string
	// HTTP is the node's HTTP host:port.
	HTTP string
	// GRPC is the node's gRPC (h2c) host:port; default HTTP.
	GRPC string
	// Weight is the node's capacity for the picker. Default 1.
	Weight float64
	// Scheme is what the node's URL said about TLS: "https" (https:// or
	// grpcs://), "http" (http://, grpc://, h2c://) or "" (a bare
	// host:port, which follows the route's TLS).
	Scheme string
}

// Timeouts are per-request deadlines. Zero fields take their defaults;
// negative disables one.
type Timeouts struct {
	// Connect bounds dialing a node. Default 3 s.
	Connect time.Duration `yaml:"connect"`
	// FirstByte bounds the wait from the request sent to the first
	// response byte. Default 300 s.
	FirstByte time.Duration `yaml:"first_byte"`
	// Idle bounds the gap between two response chunks. Default 60 s.
	Idle time.Duration `yaml:"idle"`
	// Total bounds the whole exchange. Default 600 s.
	Total time.Duration `yaml:"total"`
}

// RetryConfig bounds retries. Retries only happen on a different node and
// only for failures before any response byte came back.
type RetryConfig struct {
	// Attempts is the most retries per request. Default 2; -1 disables.
	Attempts int `yaml:"attempts"`
	// BudgetPercent caps retries at this percentage of requests, plus
	// MinRetries in reserve. Default 20.
	BudgetPercent float64 `yaml:"budget_percent"`
	// MinRetries is the reserve of retries always allowed. Default 10.
	MinRetries int `yaml:"min_retries"`
}

// BreakerConfig tunes a node's circuit breaker.
type BreakerConfig struct {
	// Failures is the consecutive failures (connection errors, timeouts,
	// 5xx) that open the breaker. Default 5.
	Failures int `yaml:"failures"`
	// OpenFor is how long a breaker stays open before the prober tries
	// the node (half-open). Default 5 s.
	OpenFor time.Duration `yaml:"open_for"`
	// ProbeTimeout bounds one health probe. Default 2 s.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
}

// HealthCheckConfig configures a route's active health checks: every
// ready node is sent GET Path about every Interval (jittered) and must
// answer within Timeout. UnhealthyAfter failures in a row take it out of
// picks (balancer.ExcludeHealth), HealthyAfter successes bring it back.
//
// A failure is no HTTP answer in time (a stopped process still completes
// TCP handshakes, so connecting proves nothing), a refused or reset
// connection, or a status other than 2xx and 404 — unless the node
// answered some request of the route while the probe waited: then it is
// busy, not hung, and the probe counts as a success (a saturated vLLM
// answers /health in seconds while it serves). A 404, or an answer that
// is not HTTP/1.x (a gRPC-only port), means the node has no such health
// endpoint: it is never excluded for that, it is watched by outlier
// detection alone (/admin/nodes says which), and asked again every 30 s.
//
// The path is, first that applies:
//
//  1. Path;
//  2. the route's health_path;
//  3. Engine's readiness path (its liveness path when the engine answers
//     readiness 503 while merely busy, as MindIE does), on the engine's
//     health port and scheme (MindIE: the management port 1026, HTTPS);
//  4. the engine a discovered node reports in its heartbeats, likewise;
//  5. the route's kind: /v2/health/ready when match.path_prefix starts
//     with /v2 (KServe v2, Triton), /-/healthz with match.ray_prefix (Ray
//     Serve), else /health (vLLM, SGLang, TGI, trtllm-serve).
//
// The zero value is the default configuration.
type HealthCheckConfig struct {
	// Disable turns the active health checks off.
	Disable bool `yaml:"disable"`
	// Engine names the nodes' engine (vllm, sglang, tgi, triton, mindie,
	// rayserve, trtllm-serve or an alias; see engines): its health path,
	// port and scheme are probed. Default: none (see above).
	Engine string `yaml:"engine"`
	// Path is the probed path. Default: see above.
	Path string `yaml:"path"`
	// Port is probed on the node's host instead of its HTTP port.
	// Default: the engine's health port when it has one, else the node's.
	Port int `yaml:"port"`
	// Scheme is http or https. Default: https for engines that serve TLS
	// by default (MindIE), else http. Certificates are verified against
	// the system roots, or CAFile.
	Scheme string `yaml:"scheme"`
	// CAFile is a PEM bundle that verifies https health endpoints instead
	// of the system roots.
	CAFile string `yaml:"ca_file"`
	// Interval between two probes of a node. Default 1 s; 10 ms..1 h.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe, connect included. Default Interval/2;
	// at most Interval.
	Timeout time.Duration `yaml:"timeout"`
	// UnhealthyAfter is the failures in a row that exclude a node.
	// Default 2; 1..100.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// HealthyAfter is the successes in a row that bring it back. Default
	// 1; 1..100.
	HealthyAfter int `yaml:"healthy_after"`
}

// OutlierConfig configures outlier detection (after Envoy's: latency and
// success-rate ejection, growing ejection times, a cap on the share of
// ejected nodes). Every Interval the health checker compares each ready
// node with the route's other nodes, on what the forwarding core saw of
// their answers:
//
//   - latency: a node whose time to first byte — its recent mean, or how
//     long it has been silent while requests wait on it, so a hung node's
//     requests count as slow without waiting for them to end — is above
//     both LatencyFloor and LatencyFactor × the median of the other
//     nodes' means is ejected (only while some other node answers);
//   - success rate: with at least SuccessRateMinHosts nodes that each
//     saw SuccessRateRequestVolume requests recently, a node whose
//     success rate is below mean − SuccessRateStdevFactor × stdev, and
//     who failed at least SuccessRateMinFailurePercent of them, is
//     ejected. (Consecutive failures open the node's breaker.) The floor
//     matters when the other nodes never fail: their stdev is then ~0
//     and one failed request would otherwise put a node below the limit
//     (envoyproxy/envoy#18752).
//
// An ejected node is out for BaseEjectionTime × the times it was ejected
// (at most MaxEjectionTime; the count falls back by one for each
// BaseEjectionTime it stays in), or until its active health check sees it
// recover from failing. At most MaxEjectionPercent of the route's ready
// nodes are ejected or excluded by health checks at once, counting this
// one, and never the last node that could take requests.
//
// The zero value is the default configuration.
type OutlierConfig struct {
	// Disable turns outlier detection off.
	Disable bool `yaml:"disable"`
	// Interval between two evaluations. Default 1 s; 10 ms..1 min.
	Interval time.Duration `yaml:"interval"`
	// LatencyFactor is how many times the other nodes' median time to
	// first byte makes a node an outlier. Default 3; at least 1.5.
	LatencyFactor float64 `yaml:"latency_factor"`
	// LatencyFloor is the time to first byte (or silence) under which no
	// node is an outlier. Default 2 s; at least 10 ms.
	LatencyFloor time.Duration `yaml:"latency_floor"`
	// SuccessRateMinHosts is the nodes with enough requests needed for
	// success-rate ejection. Default 5; at least 2.
	SuccessRateMinHosts int `yaml:"success_rate_min_hosts"`
	// SuccessRateRequestVolume is the requests a node must have seen
	// recently (a decayed count, half-life 10 s) to take part. Default
	// 100; at least 1.
	SuccessRateRequestVolume int `yaml:"success_rate_request_volume"`
	// SuccessRateStdevFactor: the ejection threshold is mean − factor ×
	// stdev of the success rates. Default 1.9; above 0.
	SuccessRateStdevFactor float64 `yaml:"success_rate_stdev_factor"`
	// SuccessRateMinFailurePercent is the share of its recent requests a
	// node must have failed to be a success-rate outlier. Default 5;
	// 0.1..100.
	SuccessRateMinFailurePercent float64 `yaml:"success_rate_min_failure_percent"`
	// BaseEjectionTime is the first ejection's length. Default 30 s; at
	// least 10 ms.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime bounds an ejection. Default 300 s; at least
	// BaseEjectionTime.
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of ejected nodes. Default 50;
	// 1..100.
	MaxEjectionPercent int `yaml:"max_ejection_percent"`
}

// AffinityConfig tunes a route's affinity (balancer.AffinityConfig holds
// the index and the load bound).
type AffinityConfig struct {
	// Off turns affinity off: every pick is by load alone.
	Off bool `yaml:"off"`
	// SessionHeader names a header whose value keeps a session on its node
	// (bounded by load like the prefix). Empty: none.
	SessionHeader string `yaml:"session_header"`
	// SessionFromUser keeps requests with the same OpenAI "user" field on
	// their node.
	SessionFromUser bool `yaml:"session_from_user"`

	balancer.AffinityConfig `yaml:",inline"`
}

// QueueConfig tunes a route's flow control (flow.Config holds the queue's
// bounds).
type QueueConfig struct {
	// Timeout is how long an interactive request may wait; then it gets
	// 503 with Retry-After. A client's own shorter timeout wins (gRPC's
	// grpc-timeout, X-Switchyard-Timeout over HTTP: gateway/forward).
	// Default 30 s (flow.DefaultTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// BatchTimeout is the same for batch requests (X-Switchyard-Priority:
	// batch, or a batch tenant), which wait out a burst instead of failing
	// into it. Default 5 min (flow.DefaultBatchTimeout, which says why).
	BatchTimeout time.Duration `yaml:"batch_timeout"`

	flow.Config `yaml:",inline"`
}

// TimeoutFor returns how long a request of class c may wait in the queue
// (Timeout or BatchTimeout).
func (q *QueueConfig) TimeoutFor(c flow.Class) time.Duration {
	if c == flow.Batch {
		return q.BatchTimeout
	}
	return q.Timeout
}

// ErrConfig is matched by every configuration error.
var ErrConfig = errors.New("gateway: config")

// bare is err's message without the sentinel's prefix ("shadow: invalid
// config: "), which the field path that the caller puts first replaces.
func bare(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

func cfgErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// ParseConfig decodes YAML strictly: unknown fields are errors naming the
// field and line. It does not apply defaults or validate.
func ParseConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, cfgErr("empty file")
		}
		if errors.Is(err, ErrConfig) {
			return nil, err // a node's own decoder, which names its line
		}
		return nil, cfgErr("%v", yamlerr.Describe(data, reflect.TypeOf(c), err))
	}
	return &c, nil
}

// LoadConfig reads, parses, defaults and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: read config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, locate(data, err))
	}
	c.lines = yamlerr.Lines(data)
	return c, nil
}

// UnmarshalYAML accepts a URL string or a mapping with id, http, grpc and
// weight; unknown keys are errors.
func (n *NodeConfig) UnmarshalYAML(v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		nc, err := ParseNodeURL(v.Value)
		if err != nil {
			return atLine(v.Line, err)
		}
		*n = nc
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			if val.Kind != yaml.ScalarNode {
				return cfgErr("line %d: node field %q: want a single value", val.Line, k.Value)
			}
			switch k.Value {
			case "id":
				n.ID = val.Value
			case "http", "grpc":
				addr, scheme, err := nodeAddr(k.Value, val.Value)
				if err != nil {
					return atLine(val.Line, err)
				}
				if scheme != "" && n.Scheme != "" && scheme != n.Scheme {
					return cfgErr("line %d: node field %s: %s mixes TLS and plaintext with the node's other address", val.Line, k.Value, val.Value)
				}
				if scheme != "" {
					n.Scheme = scheme
				}
				if k.Value == "http" {
					n.HTTP = addr
				} else {
					n.GRPC = addr
				}
			case "weight":
				w, err := strconv.ParseFloat(val.Value, 64)
				if err != nil {
					return cfgErr("line %d: node field weight: %q is not a number", val.Line, val.Value)
				}
				n.Weight = w
			default:
				return cfgErr("line %d: node field %q is unknown (known: grpc, http, id, weight)", k.Line, k.Value)
			}
		}
		return nil
	}
	return cfgErr("line %d: a node is a URL string or a mapping", v.Line)
}

// atLine puts a YAML line in front of a configuration error's message.
func atLine(line int, err error) error {
	return cfgErr("line %d: %s", line, strings.TrimPrefix(err.Error(), ErrConfig.Error()+": "))
}

// ParseNodeURL parses "http://host:port", "grpc://host:port" (also
// "h2c://"), "https://host:port" and "grpcs://host:port" (TLS: the
// route speaks TLS to its nodes) or a bare "host:port" (HTTP).
func ParseNodeURL(s string) (NodeConfig, error) {
	s = strings.TrimSpace(s)
	scheme := ""
	hostport := s
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil {
			return NodeConfig{}, cfgErr("node %q: %v", s, err)
		}
		if u.Path != "" && u.Path != "/" {
			return NodeConfig{}, cfgErr("node %q: a path is not supported", s)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return NodeConfig{}, cfgErr("node %q: no user, query or fragment allowed", s)
		}
		scheme, hostport = u.Scheme, u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return NodeConfig{}, cfgErr("node %q: want host:port: %v", s, err)
	}
	switch scheme {
	case "":
		return NodeConfig{HTTP: hostport}, nil
	case "http":
		return NodeConfig{HTTP: hostport, Scheme: "http"}, nil
	case "https":
		return NodeConfig{HTTP: hostport, Scheme: "https"}, nil
	case "grpc", "h2c":
		return NodeConfig{GRPC: hostport, Scheme: "http"}, nil
	case "grpcs":
		return NodeConfig{GRPC: hostport, Scheme: "https"}, nil
	}
	return NodeConfig{}, cfgErr("node %q: scheme %q not supported (http, https, grpc, grpcs, h2c)", s, scheme)
}

// nodeAddr reads the http or grpc field of a node mapping: host:port or
// a URL of that kind; scheme is "https", "http" or "" (bare).
func nodeAddr(field, v string) (addr, scheme string, err error) {
	if !strings.Contains(v, "://") {
		return v, "", nil
	}
	n, err := ParseNodeURL(v)
	if err != nil {
		return "", "", fmt.Errorf("node field %s: %w", field, err)
	}
	addr = n.HTTP
	if addr == "" {
		addr = n.GRPC
	}
	kind := "http"
	if n.GRPC != "" {
		kind = "grpc"
	}
	if kind != field {
		return "", "", fmt.Errorf("node field %s: %q is a %s URL", field, v, kind)
	}
	return addr, n.Scheme, nil
}

// QuickStart builds the config of `switchyard gateway --listen ADDR
// --route MODEL=URL[,URL...]`: one static route per flag. MODEL "*"
// catches every request.
func QuickStart(listen, admin string, routes []string) (*Config, error) {
	c := &Config{Listen: ListenConfig{Client: listen, Admin: admin}}
	for _, r := range routes {
		model, urls, ok := strings.Cut(r, "=")
		model = strings.TrimSpace(model)
		if !ok || model == "" || strings.TrimSpace(urls) == "" {
			return nil, cfgErr("--route %q: want MODEL=URL[,URL...]", r)
		}
		rc := RouteConfig{Name: model, Match: MatchConfig{Models: []string{model}}}
		for _, u := range strings.Split(urls, ",") {
			n, err := ParseNodeURL(u)
			if err != nil {
				return nil, fmt.Errorf("--route %q: %w", r, err)
			}
			rc.Nodes = append(rc.Nodes, n)
		}
		c.Routes = append(c.Routes, rc)
	}
	return c, nil
}

// ApplyDefaults fills zero fields with their documented defaults.
func (c *Config) ApplyDefaults() {
	if c.Listen.Client == "" {
		c.Listen.Client = "127.0.0.1:8080"
	}
	l := &c.Limits
	setInt(&l.MaxConcurrent, 10000)
	setInt(&l.MaxPerNode, 1024)
	setInt(&l.MaxHeaderBytes, 16<<10)
	setInt(&l.MaxBodyBytes, 32<<20)
	setInt(&l.MaxResponseBytes, 64<<20)
	if l.StreamBodyOver == 0 {
		l.StreamBodyOver = -1
		if l.MaxBodyBytes >= 2 {
			l.StreamBodyOver = min(1<<20, l.MaxBodyBytes/2)
		}
	}
	setInt(&l.MaxH2Streams, 250)
	setInt(&l.MaxBufferedBytes, 256<<20)
	setInt(&l.MaxConnections, 10000)
	setDur(&l.ReadTimeout, 30*time.Second)
	setDur(&l.WriteTimeout, 60*time.Second)
	setDur(&l.IdleTimeout, 120*time.Second)
	setDur(&l.DrainDelay, 5*time.Second)
	setDur(&l.ShutdownTimeout, 30*time.Second)
	setDur(&l.RetryAfter, time.Second)
	setDur(&c.WeightPeriod, 3*time.Second)
	if c.Ray != nil && c.Ray.AutoRoutes == nil {
		on := true
		c.Ray.AutoRoutes = &on
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.TLS == nil && slices.ContainsFunc(r.Nodes, func(n NodeConfig) bool { return n.Scheme == "https" }) {
			r.TLS = &UpstreamTLS{}
		}
		if r.Name == "" {
			if len(r.Match.Models) > 0 {
				r.Name = r.Match.Models[0]
			} else {
				r.Name = r.App
			}
		}
		if r.App == "" {
			r.App = r.Name
		}
		if r.Source == "" {
			r.Source = c.defaultSource(r)
		}
		if r.Policy == "" {
			r.Policy = "dynamic-swrr"
			if len(r.Nodes) > 0 {
				r.Policy = "static-swrr"
			}
		}
		for j := range r.Nodes {
			n := &r.Nodes[j]
			if n.GRPC == "" {
				n.GRPC = n.HTTP
			}
			if n.HTTP == "" {
				n.HTTP = n.GRPC
			}
			if n.ID == "" {
				n.ID = n.HTTP
			}
			if n.Weight == 0 {
				n.Weight = 1
			}
		}
		t := &r.Timeouts
		setDur(&t.Connect, 3*time.Second)
		setDur(&t.FirstByte, 300*time.Second)
		setDur(&t.Idle, 60*time.Second)
		setDur(&t.Total, 600*time.Second)
		if r.Retries.Attempts == 0 {
			r.Retries.Attempts = 2
		}
		if r.Retries.BudgetPercent == 0 {
			r.Retries.BudgetPercent = 20
		}
		setInt(&r.Retries.MinRetries, 10)
		setInt(&r.Breaker.Failures, 5)
		setDur(&r.Breaker.OpenFor, 5*time.Second)
		setDur(&r.Breaker.ProbeTimeout, 2*time.Second)
		if r.Stream == "" {
			r.Stream = "auto"
		}
		if r.StreamUsage == "" {
			r.StreamUsage = "inject"
		}
		if f := r.Fallback; f != nil && len(f.On) == 0 {
			f.On = []string{Fallback5xx, Fallback429, FallbackSaturated}
		}
		if r.HashHeader == "" {
			r.HashHeader = "X-Session-Id"
		}
		setDur(&r.Queue.Timeout, flow.DefaultTimeout)
		setDur(&r.Queue.BatchTimeout, flow.DefaultBatchTimeout)
		h := &r.HealthCheck
		setDur(&h.Interval, time.Second)
		setDur(&h.Timeout, h.Interval/2)
		setInt(&h.UnhealthyAfter, 2)
		setInt(&h.HealthyAfter, 1)
		o := &r.Outlier
		setDur(&o.Interval, time.Second)
		if o.LatencyFactor == 0 {
			o.LatencyFactor = 3
		}
		setDur(&o.LatencyFloor, 2*time.Second)
		setInt(&o.SuccessRateMinHosts, 5)
		setInt(&o.SuccessRateRequestVolume, 100)
		if o.SuccessRateStdevFactor == 0 {
			o.SuccessRateStdevFactor = 1.9
		}
		if o.SuccessRateMinFailurePercent == 0 {
			o.SuccessRateMinFailurePercent = 5
		}
		setDur(&o.BaseEjectionTime, 30*time.Second)
		setDur(&o.MaxEjectionTime, max(300*time.Second, o.BaseEjectionTime))
		setInt(&o.MaxEjectionPercent, 50)
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDur(p *time.Duration, def time.Duration) {
	if *p == 0 {
		*p = def
	}
}

// negativeTimeout names the first of l's timeouts that is negative, or "".
func negativeTimeout(l *Limits) string {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_timeout", l.ReadTimeout}, {"write_timeout", l.WriteTimeout}, {"idle_timeout", l.IdleTimeout},
		{"shutdown_timeout", l.ShutdownTimeout}, {"retry_after", l.RetryAfter}} {
		if d.v < 0 {
			return d.name
		}
	}
	return ""
}

// Validate reports the first invalid field, by its YAML path.
func (c *Config) Validate() error {
	if err := validAddr("listen.client", c.Listen.Client); err != nil {
		return err
	}
	if c.Listen.Admin != "" {
		if err := validAddr("listen.admin", c.Listen.Admin); err != nil {
			return err
		}
	}
	for i, h := range c.Admin.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return cfgErr("admin.allowed_hosts[%d] %q: want a host name or address, without port", i, h)
		}
	}
	if c.Admin.PProf && c.Admin.TokenFile == "" {
		return cfgErr("admin.pprof: needs admin.token_file (pprof is served only with the admin token)")
	}
	if (c.Listen.TLSCert == "") != (c.Listen.TLSKey == "") {
		return cfgErr("listen.tls_cert and listen.tls_key: set both or neither")
	}
	l := &c.Limits
	switch {
	case l.MaxConcurrent < 1:
		return cfgErr("limits.max_concurrent %d: must be at least 1", l.MaxConcurrent)
	case l.MaxPerNode < 1:
		return cfgErr("limits.max_per_node %d: must be at least 1", l.MaxPerNode)
	case l.MaxHeaderBytes < 4<<10 || l.MaxHeaderBytes > 1<<20:
		return cfgErr("limits.max_header_bytes %d: must be 4096..1048576", l.MaxHeaderBytes)
	case l.MaxBodyBytes < 1:
		return cfgErr("limits.max_body_bytes %d: must be positive", l.MaxBodyBytes)
	case l.StreamBodyOver < -1 || l.StreamBodyOver == 0 || l.StreamBodyOver >= l.MaxBodyBytes:
		return cfgErr("limits.stream_body_over %d: must be -1 (off) or 1..limits.max_body_bytes-1", l.StreamBodyOver)
	case l.MaxResponseBytes < 1:
		return cfgErr("limits.max_response_bytes %d: must be positive", l.MaxResponseBytes)
	case negativeTimeout(l) != "":
		return cfgErr("limits.%s: must not be negative", negativeTimeout(l))
	case l.DrainDelay > 10*time.Minute:
		return cfgErr("limits.drain_delay %v: at most 10m", l.DrainDelay)
	case l.MaxBufferedBytes < l.MaxBodyBytes:
		return cfgErr("limits.max_buffered_bytes %d: must be at least limits.max_body_bytes (%d)", l.MaxBufferedBytes, l.MaxBodyBytes)
	case l.MaxConnections < 1:
		return cfgErr("limits.max_connections %d: must be at least 1", l.MaxConnections)
	case l.MaxConnectionsPerIP < 0:
		return cfgErr("limits.max_connections_per_ip %d: must not be negative (0: no cap)", l.MaxConnectionsPerIP)
	case l.MaxH2Streams < 1 || l.MaxH2Streams > 10000:
		return cfgErr("limits.max_h2_streams %d: must be 1..10000", l.MaxH2Streams)
	}
	if c.Auth != nil {
		if err := c.Auth.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if c.WeightPeriod < 100*time.Millisecond {
		return cfgErr("weight_period %v: must be at least 100ms", c.WeightPeriod)
	}
	if r := c.Telemetry.TraceRatio; !(r >= 0 && r <= 1) {
		return cfgErr("telemetry.trace_ratio %v: must be 0..1", r)
	}
	if e := c.Telemetry.OTLPEndpoint; e != "" {
		if _, err := OTLPTracesURL(e); err != nil {
			return cfgErr("telemetry.otlp_endpoint %q: %v", e, err)
		}
	}
	if len(c.Routes) == 0 && !c.Ray.autoRoutes() {
		return cfgErr("routes: at least one route is required (or a ray block with auto_routes)")
	}
	if err := c.validateSources(); err != nil {
		return err
	}
	names := map[string]bool{}
	models := map[string]string{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			return cfgErr("%s.name: required (or set match.models or app)", at)
		}
		if names[r.Name] {
			return cfgErr("%s.name %q: duplicate route name", at, r.Name)
		}
		names[r.Name] = true
		m := &r.Match
		if len(m.Models) == 0 && len(m.Adapters) == 0 && m.Host == "" && m.PathPrefix == "" && m.RayPrefix == "" && len(m.Headers) == 0 {
			return cfgErr("%s.match: set at least one condition (models: [\"*\"] matches everything)", at)
		}
		for _, a := range m.Adapters {
			base, wild := strings.CutSuffix(a, "*")
			switch {
			case base == "" || !utf8.ValidString(a) || strings.Contains(base, "*"):
				return cfgErr("%s.match.adapters: %q: want an adapter name, or a non-empty prefix followed by one \"*\"", at, a)
			case slices.Contains(m.Models, "*"):
				return cfgErr("%s.match.adapters: the \"*\" route matches every model already; list its adapters on the route that serves their base model", at)
			case !wild && slices.Contains(m.Models, a):
				return cfgErr("%s.match.adapters: %q is also in match.models; list it once", at, a)
			}
			if onlyModels(m) && !wild {
				if prev, dup := models[a]; dup {
					return cfgErr("%s.match.adapters: %q already routed by %q", at, a, prev)
				}
				models[a] = r.Name
			}
		}
		for _, mod := range m.Models {
			if mod == "" || !utf8.ValidString(mod) {
				return cfgErr("%s.match.models: empty or non-UTF-8 model name", at)
			}
			if mod == "*" && (len(m.Models) > 1 || m.Host != "" || m.PathPrefix != "" || m.RayPrefix != "" || len(m.Headers) > 0) {
				return cfgErr("%s.match.models: \"*\" must be the route's only condition", at)
			}
			if onlyModels(m) {
				if prev, dup := models[mod]; dup {
					return cfgErr("%s.match.models: %q already routed by %q", at, mod, prev)
				}
				models[mod] = r.Name
			}
		}
		if m.PathPrefix != "" && m.PathPrefix[0] != '/' {
			return cfgErr("%s.match.path_prefix %q: must start with /", at, m.PathPrefix)
		}
		if m.RayPrefix != "" && m.RayPrefix[0] != '/' {
			return cfgErr("%s.match.ray_prefix %q: must start with /", at, m.RayPrefix)
		}
		if err := c.validateSource(r, at); err != nil {
			return err
		}
		for j, n := range r.Nodes {
			if err := validAddr(fmt.Sprintf("%s.nodes[%d].http", at, j), n.HTTP); err != nil {
				return err
			}
			if err := validAddr(fmt.Sprintf("%s.nodes[%d].grpc", at, j), n.GRPC); err != nil {
				return err
			}
			if !(n.Weight > 0) {
				return cfgErr("%s.nodes[%d].weight %v: must be positive", at, j, n.Weight)
			}
		}
		if err := r.validateBehaviour(at); err != nil {
			return err
		}
	}
	known := func(target string) bool {
		for i := range c.Routes {
			if c.Routes[i].Name == target || slices.Contains(c.Routes[i].Match.Models, target) {
				return true
			}
		}
		return false
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Split != nil {
			if err := r.Split.ValidateTargets(known); err != nil {
				return cfgErr("routes[%d].split: %v (a target is a route name or model)", i, bare(err, split.ErrInvalidConfig))
			}
		}
		if r.Shadow != nil {
			if err := r.Shadow.ValidateTargets(known); err != nil {
				return cfgErr("routes[%d].shadow: %v (a target is a route name or model)", i, bare(err, shadow.ErrInvalidConfig))
			}
		}
		if f := r.Fallback; f != nil {
			if !known(f.Target) {
				return cfgErr("routes[%d].fallback.target %q: no route or model of that name", i, f.Target)
			}
			if f.Target == r.Name || slices.Contains(r.Match.Models, f.Target) {
				return cfgErr("routes[%d].fallback.target %q: the route itself", i, f.Target)
			}
		}
	}
	return nil
}

// validateBehaviour checks what a route does with its requests (policy,
// timeouts, retries, breaker, paths, health, stream, split, shadow); at
// is its YAML path.
func (r *RouteConfig) validateBehaviour(at string) error {
	if _, err := balancer.NamedConfig(r.Policy); err != nil {
		return cfgErr("%s.policy: %v", at, err)
	}
	t := r.Timeouts
	if t.Connect > time.Hour || t.FirstByte > 24*time.Hour || t.Idle > 24*time.Hour || t.Total > 24*time.Hour {
		return cfgErr("%s.timeouts: absurdly long", at)
	}
	if r.Retries.Attempts < -1 || r.Retries.Attempts > 5 {
		return cfgErr("%s.retries.attempts %d: must be -1..5", at, r.Retries.Attempts)
	}
	if !(r.Retries.BudgetPercent > 0 && r.Retries.BudgetPercent <= 100) {
		return cfgErr("%s.retries.budget_percent %v: must be in (0, 100]", at, r.Retries.BudgetPercent)
	}
	if r.Retries.MinRetries < 0 {
		return cfgErr("%s.retries.min_retries: must not be negative", at)
	}
	if err := r.Affinity.AffinityConfig.Validate(); err != nil {
		return cfgErr("%s.affinity: %v", at, err)
	}
	if err := r.Queue.Config.Validate(); err != nil {
		return cfgErr("%s.queue: %v", at, err)
	}
	if r.Queue.Timeout < 0 {
		return cfgErr("%s.queue.timeout %v: must not be negative", at, r.Queue.Timeout)
	}
	if r.Queue.BatchTimeout < 0 {
		return cfgErr("%s.queue.batch_timeout %v: must not be negative", at, r.Queue.BatchTimeout)
	}
	if r.Breaker.Failures < 1 || r.Breaker.OpenFor < 10*time.Millisecond || r.Breaker.ProbeTimeout <= 0 {
		return cfgErr("%s.breaker: failures >= 1, open_for >= 10ms, probe_timeout > 0", at)
	}
	for j, p := range r.AllowPaths {
		if p == "" || p[0] != '/' || strings.ContainsAny(p, "?#%") {
			return cfgErr("%s.allow_paths[%d] %q: want an absolute path (or prefix ending in / or *), without query or escapes", at, j, p)
		}
	}
	if r.HealthPath != "" && r.HealthPath[0] != '/' {
		return cfgErr("%s.health_path %q: must start with /", at, r.HealthPath)
	}
	if err := r.HealthCheck.validate(at + ".health_check"); err != nil {
		return err
	}
	if err := r.Outlier.validate(at + ".outlier"); err != nil {
		return err
	}
	switch r.Stream {
	case "auto", "always", "never":
	default:
		return cfgErr("%s.stream %q: want auto, always or never", at, r.Stream)
	}
	switch r.StreamUsage {
	case "inject", "pass":
	default:
		return cfgErr("%s.stream_usage %q: want inject or pass", at, r.StreamUsage)
	}
	if r.StreamKeepAlive != 0 && r.StreamKeepAlive < time.Second {
		return cfgErr("%s.stream_keepalive %v: at least 1s (or unset: off)", at, r.StreamKeepAlive)
	}
	if strings.ContainsAny(r.UpstreamModel, "\"\\") || strings.ContainsFunc(r.UpstreamModel, func(c rune) bool { return c < 0x20 }) {
		return cfgErr("%s.upstream_model %q: no quotes, backslashes or control characters", at, r.UpstreamModel)
	}
	if f := r.Fallback; f != nil {
		if f.Target == "" {
			return cfgErr("%s.fallback.target: required (a route name or model)", at)
		}
		for j, on := range f.On {
			switch on {
			case Fallback5xx, Fallback429, FallbackSaturated:
			default:
				return cfgErr("%s.fallback.on[%d] %q: want 5xx, 429 or saturated", at, j, on)
			}
		}
	}
	if r.Split != nil {
		if err := r.Split.Validate(); err != nil {
			return cfgErr("%s.split: %v", at, bare(err, split.ErrInvalidConfig))
		}
	}
	if r.Shadow != nil {
		if err := r.Shadow.Validate(); err != nil {
			return cfgErr("%s.shadow: %v", at, bare(err, shadow.ErrInvalidConfig))
		}
	}
	return nil
}

func (h *HealthCheckConfig) validate(at string) error {
	if h.Engine != "" {
		if _, err := engines.Lookup(h.Engine); err != nil {
			return cfgErr("%s.engine: %v", at, err)
		}
	}
	switch {
	case h.Path != "" && (h.Path[0] != '/' || strings.ContainsAny(h.Path, " \t\r\n")):
		return cfgErr("%s.path %q: must start with / and hold no blanks", at, h.Path)
	case h.Port < 0 || h.Port > 65535:
		return cfgErr("%s.port %d: must be 1..65535 (0 for the default)", at, h.Port)
	case h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https":
		return cfgErr("%s.scheme %q: want http or https", at, h.Scheme)
	case h.Interval < 10*time.Millisecond || h.Interval > time.Hour:
		return cfgErr("%s.interval %v: must be 10ms..1h", at, h.Interval)
	case h.Timeout <= 0 || h.Timeout > h.Interval:
		return cfgErr("%s.timeout %v: must be positive and at most the interval (%v)", at, h.Timeout, h.Interval)
	case h.UnhealthyAfter < 1 || h.UnhealthyAfter > 100:
		return cfgErr("%s.unhealthy_after %d: must be 1..100", at, h.UnhealthyAfter)
	case h.HealthyAfter < 1 || h.HealthyAfter > 100:
		return cfgErr("%s.healthy_after %d: must be 1..100", at, h.HealthyAfter)
	}
	return nil
}

func (o *OutlierConfig) validate(at string) error {
	switch {
	case o.Interval < 10*time.Millisecond || o.Interval > time.Minute:
		return cfgErr("%s.interval %v: must be 10ms..1m", at, o.Interval)
	case !(o.LatencyFactor >= 1.5) || math.IsInf(o.LatencyFactor, 0):
		return cfgErr("%s.latency_factor %v: must be at least 1.5", at, o.LatencyFactor)
	case o.LatencyFloor < 10*time.Millisecond:
		return cfgErr("%s.latency_floor %v: must be at least 10ms", at, o.LatencyFloor)
	case o.SuccessRateMinHosts < 2:
		return cfgErr("%s.success_rate_min_hosts %d: must be at least 2", at, o.SuccessRateMinHosts)
	case o.SuccessRateRequestVolume < 1:
		return cfgErr("%s.success_rate_request_volume %d: must be at least 1", at, o.SuccessRateRequestVolume)
	case !(o.SuccessRateStdevFactor > 0) || math.IsInf(o.SuccessRateStdevFactor, 0):
		return cfgErr("%s.success_rate_stdev_factor %v: must be above 0", at, o.SuccessRateStdevFactor)
	case !(o.SuccessRateMinFailurePercent >= 0.1 && o.SuccessRateMinFailurePercent <= 100):
		return cfgErr("%s.success_rate_min_failure_percent %v: must be 0.1..100", at, o.SuccessRateMinFailurePercent)
	case o.BaseEjectionTime < 10*time.Millisecond:
		return cfgErr("%s.base_ejection_time %v: must be at least 10ms", at, o.BaseEjectionTime)
	case o.MaxEjectionTime < o.BaseEjectionTime:
		return cfgErr("%s.max_ejection_time %v: must be at least base_ejection_time (%v)", at, o.MaxEjectionTime, o.BaseEjectionTime)
	case o.MaxEjectionPercent < 1 || o.MaxEjectionPercent > 100:
		return cfgErr("%s.max_ejection_percent %d: must be 1..100", at, o.MaxEjectionPercent)
	}
	return nil
}

func onlyModels(m *MatchConfig) bool {
	return len(m.Models)+len(m.Adapters) > 0 && m.Host == "" && m.PathPrefix == "" && m.RayPrefix == "" && len(m.Headers) == 0
}

func validAddr(field, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return cfgErr("%s %q: want host:port", field, addr)
	}
	return nil
}

// ReadToken returns the discovery token, reading TokenFile when set.
func (d *DiscoveryConfig) ReadToken() (string, error) {
	if d.TokenFile == "" {
		return d.Token, nil
	}
	b, err := os.ReadFile(d.TokenFile)
	if err != nil {
		return "", fmt.Errorf("gateway: discovery.token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// OTLPTracesURL checks an OTLP/HTTP endpoint and returns its traces URL:
// http or https, a host and port, the path /v1/traces unless one is given.
func OTLPTracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("want http://HOST:PORT or https://HOST:PORT")
	case u.Host == "" || u.Hostname() == "":
		return "", errors.New("no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("no user, query or fragment allowed")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}
