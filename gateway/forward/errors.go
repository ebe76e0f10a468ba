package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Errors callers act on. Each maps to one status in classify.
var (
	// ErrOverloaded: the gateway is at Limits.MaxConcurrent. 503 with
	// Retry-After; the client should back off and retry.
	ErrOverloaded = errors.New("gateway: overloaded")
	// ErrRouteSaturated: every node of the route is at Limits.MaxPerNode.
	// 429 with Retry-After.
	ErrRouteSaturated = errors.New("gateway: every node of the route is at its concurrency limit")
	// ErrTooLarge: the request body is over Limits.MaxBodyBytes. 413.
	ErrTooLarge = errors.New("gateway: request body too large")
	// ErrHeaderTooLarge: the request headers are over Limits.MaxHeaderBytes. 431.
	ErrHeaderTooLarge = errors.New("gateway: request headers too large")
	// ErrURITooLong: the request target is too long. 414.
	ErrURITooLong = errors.New("gateway: request URI too long")
	// ErrBadRequest: the request is malformed. 400.
	ErrBadRequest = errors.New("gateway: malformed request")
	// ErrTimeout: a route timeout fired. 504.
	ErrTimeout = errors.New("gateway: upstream timeout")
	// ErrClientCancelled: the client went away. 499 (logged, rarely seen).
	ErrClientCancelled = errors.New("gateway: client cancelled")
	// ErrUpstream: the node failed (connection refused or reset, bad
	// response). 502.
	ErrUpstream = errors.New("gateway: upstream failure")
	// ErrPathNotAllowed: the path is not one of the route's inference
	// APIs (RouteConfig.AllowPaths). 404; never forwarded.
	ErrPathNotAllowed = errors.New("gateway: path not allowed")
	// ErrLoop: the request already passed through this gateway (its Via
	// names it): a routing loop. 508.
	ErrLoop = errors.New("gateway: routing loop: the request already passed through this gateway")
	// ErrInvalidAPIKey: API keys are on and the request has none, or an
	// unknown one. 401.
	ErrInvalidAPIKey = errors.New("gateway: invalid API key: send Authorization: Bearer KEY or x-api-key: KEY")
	// ErrRateLimited: the tenant is over its requests or tokens per minute,
	// or at its requests in flight. 429 with Retry-After.
	ErrRateLimited = errors.New("gateway: rate limit reached for this API key")
	// ErrQueued: every node of the route was full and the request's wait
	// in the route queue ended (its deadline, or the queue was full).
	// 503 with Retry-After.
	ErrQueued = errors.New("gateway: every node is busy and the route's queue could not take the request in time")
	// ErrShuttingDown: the gateway is draining. 503.
	ErrShuttingDown = errors.New("gateway: shutting down")
)

// UpstreamError is a failure talking to one node. Retryable says that no
// response byte came back, so the request may go to another node.
type UpstreamError struct {
	Node      string
	Err       error
	Retryable bool
	// Status is the node's status when it refused the request (503
	// draining, 429 queue full), with its Retry-After.
	Status     int
	RetryAfter string
}

func (e *UpstreamError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("gateway: node %s answered %d", e.Node, e.Status)
	}
	return fmt.Sprintf("gateway: node %s: %v", e.Node, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// errorClass is how one error is answered.
type errorClass struct {
	status int    // HTTP status
	typ    string // OpenAI error type
	code   string // OpenAI error code
	grpc   uint32 // gRPC status code
	retry  bool   // send Retry-After
}

// gRPC status codes used (google.golang.org/grpc/codes values).
const (
	grpcCancelled          = 1
	grpcInvalidArgument    = 3
	grpcDeadlineExceeded   = 4
	grpcNotFound           = 5
	grpcResourceExhausted  = 8
	grpcUnimplemented      = 12
	grpcUnauthenticated    = 16
	grpcInternal           = 13
	grpcUnavailable        = 14
	statusClientClosedConn = telemetry.StatusClientClosed
)

// classify maps an error to its status. It is the only place that does:
// 400 malformed, 404 unknown route, 413/414/431 too large, 429 route
// saturated, 503 overloaded / no endpoint / shutting down, 504 timeout,
// 499 client cancelled, 502 anything else from upstream.
func classify(err error) errorClass {
	var unknown *route.UnknownError
	switch {
	case errors.As(err, &unknown):
		return errorClass{404, "invalid_request_error", "model_not_found", grpcNotFound, false}
	case errors.Is(err, ErrPathNotAllowed):
		return errorClass{404, "invalid_request_error", "path_not_allowed", grpcUnimplemented, false}
	case errors.Is(err, route.ErrMalformedJSON), errors.Is(err, route.ErrModelNotString),
		errors.Is(err, route.ErrModelNotUTF8), errors.Is(err, route.ErrMalformedGRPC), errors.Is(err, ErrBadRequest),
		errors.Is(err, route.ErrBadPath):
		return errorClass{400, "invalid_request_error", "invalid_request", grpcInvalidArgument, false}
	case errors.Is(err, ErrTooLarge), errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errorClass{413, "invalid_request_error", "request_too_large", grpcResourceExhausted, false}
	case errors.Is(err, ErrRequestTimeout):
		return errorClass{408, "invalid_request_error", "request_timeout", grpcDeadlineExceeded, false}
	case errors.Is(err, ErrURITooLong):
		return errorClass{414, "invalid_request_error", "uri_too_long", grpcInvalidArgument, false}
	case errors.Is(err, ErrHeaderTooLarge):
		return errorClass{431, "invalid_request_error", "headers_too_large", grpcInvalidArgument, false}
	case errors.Is(err, ErrInvalidAPIKey):
		return errorClass{401, "invalid_request_error", "invalid_api_key", grpcUnauthenticated, false}
	case errors.Is(err, ErrRateLimited):
		return errorClass{429, "rate_limit_error", "rate_limit_exceeded", grpcResourceExhausted, true}
	case errors.Is(err, ErrRouteSaturated):
		return errorClass{429, "rate_limit_error", "route_saturated", grpcResourceExhausted, true}
	case errors.Is(err, ErrOverloaded):
		return errorClass{503, "server_error", "overloaded", grpcUnavailable, true}
	case errors.Is(err, ErrLoop):
		return errorClass{508, "server_error", "loop_detected", grpcInternal, false}
	case errors.Is(err, ErrQueued):
		return errorClass{503, "server_error", "queue_timeout", grpcUnavailable, true}
	case errors.Is(err, ErrBodyBudget):
		return errorClass{503, "server_error", "overloaded", grpcUnavailable, true}
	case errors.Is(err, ErrShuttingDown):
		return errorClass{503, "server_error", "shutting_down", grpcUnavailable, true}
	case errors.Is(err, balancer.ErrNoEndpoint):
		return errorClass{503, "server_error", "no_healthy_node", grpcUnavailable, true}
	case errors.Is(err, ErrTimeout):
		return errorClass{504, "server_error", "upstream_timeout", grpcDeadlineExceeded, false}
	case errors.Is(err, ErrClientCancelled), errors.Is(err, context.Canceled):
		return errorClass{statusClientClosedConn, "client_error", "client_cancelled", grpcCancelled, false}
	case isTimeout(err):
		return errorClass{504, "server_error", "upstream_timeout", grpcDeadlineExceeded, false}
	}
	var ue *UpstreamError
	if errors.As(err, &ue) {
		switch ue.Status {
		case 503:
			return errorClass{503, "server_error", "upstream_unavailable", grpcUnavailable, true}
		case 429:
			return errorClass{429, "rate_limit_error", "upstream_rate_limited", grpcResourceExhausted, true}
		}
	}
	return errorClass{502, "server_error", "upstream_error", grpcUnavailable, false}
}

func isTimeout(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, fasthttp.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clientMessage is err as the client sees it: node addresses and internal
// error text stay in the gateway's logs and metrics.
func clientMessage(err error) string {
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		return strings.TrimPrefix(err.Error(), "gateway: ")
	}
	cause := "failed"
	switch {
	case ue.Status != 0:
		cause = fmt.Sprintf("answered %d", ue.Status)
	case isTimeout(err):
		cause = "did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = "refused the connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, fasthttp.ErrConnectionClosed):
		cause = "closed the connection"
	case errors.Is(err, upstream.ErrResponseTooLarge):
		cause = "answered more than limits.max_response_bytes"
	}
	return "upstream node " + cause
}

// errorBody renders OpenAI's error shape with the request id.
func errorBody(err error, c errorClass, requestID []byte) []byte {
	msg := clientMessage(err)
	type inner struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      string `json:"code"`
		RequestID string `json:"request_id,omitempty"`
	}
	b, _ := json.Marshal(struct {
		Error inner `json:"error"`
	}{inner{msg, c.typ, c.code, string(requestID)}})
	return b
}

// ErrorAnswer is the status and OpenAI-shaped body for err, for answers a
// frontend gives before a request reaches the core (unparsable requests).
func ErrorAnswer(err error) (int, []byte) {
	c := classify(err)
	return c.status, errorBody(err, c, nil)
}
