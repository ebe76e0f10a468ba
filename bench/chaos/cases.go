package chaos

import (
	"encoding/json"
	"time"
)

// cases lists every case in the order they run: attacks on the client
// port, the admin port and the fleet first, then faults, then the
// gateway's own signals. Each case starts from a healed topology (every
// process up, every engine healthy and routable). one-failure runs
// before the first fault: it needs engines whose recent answers are all
// good (outlier detection remembers failures with a 10 s half-life).
func cases() []testCase {
	return []testCase{
		{name: "allowlist", items: "1", quick: true, run: caseAllowlist,
			expect: "engine control paths (vLLM, SGLang, Triton, the sim's /_sim/) and path tricks (.., //, %2F, %2e, NUL) answered 404/400 by the gateway, never forwarded; engines untouched"},
		{name: "admin-port", items: "8", quick: true, run: caseAdmin,
			expect: "no token 401, wrong token 401, form post 415, rebound Host 421, pprof off 404; health, readiness, metrics open; the token and JSON work"},
		{name: "get-cl-te", items: "7", quick: true, run: caseCLTE,
			expect: "400, never forwarded; a smuggled request after a POST with both never reaches an engine"},
		{name: "absolute-form", items: "7", quick: true, run: caseAbsoluteForm,
			expect: "the engine sees the Host header, not the host of the absolute URI"},
		{name: "hop-headers", items: "7", quick: true, run: caseHopHeaders,
			expect: "Keep-Alive, Proxy-Connection, Upgrade from the engine stripped (HTTP/1.1 and h2c); end-to-end headers kept"},
		{name: "no-echo-400", items: "7", quick: true, run: caseNoEcho,
			expect: "a malformed request with Authorization gets 400 without the token in it"},
		{name: "routing-loop", items: "7", quick: true, run: caseLoop,
			expect: "a node whose address is the gateway: 508 loop_detected, at once"},
		{name: "oversized", items: "held", quick: true, run: caseOversized,
			expect: "431 for headers (and a request line) over max_header_bytes, HTTP/1.1 and h2c (a header block needing CONTINUATION frames past the limit: 431 or the connection closed, as Go's HTTP/2 servers do); 413 for bodies over max_body_bytes: declared (at once, whatever part of the body arrived), sent, chunked, h2c; never forwarded; served on"},
		{name: "slowloris", items: "held", quick: true, run: caseSlowloris,
			expect: "30 HTTP/1.1 connections trickling headers and 30 trickling a body, a byte every 200 ms: each answered 408 or closed by read_timeout (3 s) + 2 s; other clients served meanwhile, all 200"},
		{name: "grpc-control", items: "1", quick: true, run: caseGRPCControl,
			expect: "gRPC control methods (KServe repository load/unload, trace/log settings, shared memory, statistics; health and reflection services; a path trick) naming a route with a gRPC node: refused by the gateway (grpc-status 12 Unimplemented, or 5 NotFound when the method has no model field to route on), never forwarded; ModelInfer forwarded"},
		{name: "forged-fleet", items: "9, 10", quick: true, run: caseForgedFleet,
			expect: "with a stolen agent credential: another app, a huge capacity, another node id prefix, an address outside the CIDRs refused (403); reader and agent credentials out of their scope refused; a forged offline beat with incarnation 2^64−1 refused and removes nothing; nothing reaches the forged address; load unaffected"},
		{name: "nodes-per-app", items: "11", run: caseLimits,
			expect: "app limited (max_nodes 2): 2 nodes listed, the others refused (429, reason limit); the gateway never routes to more than 2"},
		{name: "tier-limits", items: "11", run: caseTierLimits,
			expect: "a Resource instance with max-apps 2 and max-subscribers 2: the third app and the third subscriber refused (429, reason limit, field named); an app whose last node left is freed (once its tombstone expired, 30 s) and a new app fits"},
		{name: "tier-mtls", items: "9, 11", quick: true, run: caseTierMTLS,
			expect: "every instance refuses plaintext, a missing client certificate and another CA's certificate; agents known by their certificate's SAN alone announce; a credential bound to a token and a SAN announces with its certificate, is refused with another; over HTTP a reader known by its SAN reads and a bound agent announces"},
		{name: "gateway-tier-tls", items: "11", quick: true, run: caseGatewayTierTLS,
			expect: "the gateway reads the tier over mTLS (routes current, all engines); a gateway trusting another CA gets nothing (certificate error logged, no node, 503)"},
		{name: "tls-listener", items: "held", quick: true, run: caseTLSListener,
			expect: "a gateway with a TLS client listener (test CA) serves HTTP/1.1 and HTTP/2 by ALPN, all 200 over TLS; plaintext, h2c, TLS 1.1 and a client not trusting the CA get nothing"},
		{name: "https-node", items: "11", run: caseHTTPSNode,
			expect: "an https:// engine behind a route with the CA bundle, reached through the TLS listener: health-checked and served, all 200 from it; behind a route trusting another CA it serves nothing (5xx)"},
		{name: "clock-back", items: "10", run: caseClockBack,
			expect: "an agent restarted behind its own tombstone (left by a run whose clock was 40 s ahead) adopts the incarnation it is told and is routable again in < 10 s; load unaffected"},
		{name: "one-failure", items: "3", run: caseOneFailure,
			expect: "one engine fails one request among thousands of healthy answers: no ejection (its breaker needs 5 failures in a row; one failure is no statistical outlier); all 5 engines routable"},
		{name: "kill9-engine", items: "fault, 2", quick: true, run: caseKillEngine,
			expect: "engine out of the route in < 5 s; its streams cut are errors at the client (never a clean end); buffered requests retried: all 200; back after restart"},
		{name: "kill9-agent", items: "fault", run: caseKillAgent,
			expect: "its node leaves the lists (missed beats) and the gateway; requests in flight on it finish: all 200; back after restart"},
		{name: "kill9-resource", items: "fault", run: caseKillResource,
			expect: "agents and the gateway fail over: no node leaves the gateway, all 200; the restarted instance lists every node again"},
		{name: "resources-down", items: "fault", run: caseAllResourcesDown,
			expect: "the gateway keeps routing on its last list (stale), all 200; everything reconnects after the restart"},
		{name: "sigstop-engine", items: "fault, 3", run: caseSIGSTOP,
			expect: "stopped engine out of the route in < 5 s; requests held on it finish after SIGCONT: all 200; back after SIGCONT"},
		{name: "hung-engine", items: "3", quick: true, run: caseHung,
			expect: "an engine that accepts and never answers (health included) out of the route in < 5 s; held requests finish on recovery: all 200"},
		{name: "engine-500", items: "fault", run: caseEngine500,
			expect: "an engine failing every request (health 200): its breaker opens after 5 failures, so only its first 500s reach clients (a node's answer is passed on, not retried); out of the route in < 5 s; all else 200"},
		{name: "engine-429", items: "fault, 7", run: caseEngine429,
			expect: "one busy engine (429, Retry-After 7): it rests out of picks (overload) for its Retry-After, so only requests already sent meet its refusals; those retried elsewhere within the retry budget, past it passed on with its Retry-After; its breaker stays closed; all busy: 429 with Retry-After 7"},
		{name: "node-503", items: "7", run: caseNode503,
			expect: "an engine answering 503 with Retry-After 1 (draining; health 503): its refusals retried elsewhere within the retry budget, past it passed on with its Retry-After; out of the route in < 5 s; its breaker never opens; back after"},
		{name: "agent-drain", items: "held", run: caseAgentDrain,
			expect: "`switchyard agent drain` of e3 under load returns once the gateway acknowledged; e3 out of the route, its requests in flight finish, none starts there; 0 errors; undrain brings it back"},
		{name: "health-404", items: "3", run: caseHealth404,
			expect: "a health path every engine answers 404 for: no engine excluded for lacking a health endpoint (logged as watched by outlier detection alone); an engine 150 times slower (first byte after 3 s) ejected by outlier detection (latency: a decayed mean over its answers, 2 s floor) in < 15 s, or starved by the picker first (at most 5 % of the answers while slow); all 200"},
		{name: "engine-trickle", items: "fault", run: caseTrickle,
			expect: "slow answers still complete (no timeout, no cut): all 200"},
		{name: "crash-midstream", items: "fault, 2", run: caseCrashMidStream,
			expect: "connections reset mid-stream: those streams end in an error at the client (never cleanly), all else 200; engine out of the route, back after restart"},
		{name: "stream-cut", items: "2", quick: true, run: caseStreamCut,
			expect: "streams closed by the engine between chunks (no terminal chunk, no [DONE]) reach the client as errors (HTTP/1.1: no terminal chunk; h2: reset), never a clean end"},
		{name: "cancel", items: "5", run: caseCancel,
			expect: "h2 streams reset and HTTP/1.1 clients gone after the first token: every engine stops generating within 3 s (streamed requests: the simulated engine notices a cancelled generation when it writes; buffered ones are covered by gateway/cancel_test.go)"},
		{name: "slow-h2-bodies", items: "4", run: caseSlowH2Bodies,
			expect: "500 h2 streams whose bodies never end (over max_concurrent 400) answered 408 after read_timeout (3 s) and hold no slot: other clients get 200"},
		{name: "body-budget", items: "6", run: caseBodyBudget,
			expect: "24 concurrent 12 MiB bodies over a 32 MiB budget: 200 or 503 with Retry-After; a 20 MiB body 413; gateway RSS grows < 160 MiB; budget given back"},
		{name: "conn-caps", items: "6", run: caseConnCaps,
			expect: "per client IP: the 65th connection closed at once; overall: no more than 300 open, the rest closed at once; open connections keep working; places freed on close"},
		{name: "gateway-sighup", items: "fault", quick: true, run: caseSIGHUP,
			expect: "config reloaded (a new route serves) without a failed request: all 200"},
		{name: "gateway-sigterm", items: "fault, 7", run: caseSIGTERM,
			expect: "in-flight requests finish (200), answers while draining carry Connection: close, readiness fails at once, new connections served during the drain delay (1 s) and refused after it, exit 0; restarted gateway serves"},
	}
}

// openAIError is the gateway's error body.
type openAIError struct {
	Error struct {
		Message, Type, Code string
	}
}

func errorCode(body string) string {
	var e openAIError
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.Error.Code
}

func secs(d time.Duration) float64 { return d.Seconds() }
