package forward

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		grpc   uint32
		retry  bool
	}{
		{"unknown route", &route.UnknownError{Model: "x"}, 404, grpcNotFound, false},
		{"malformed json", route.ErrMalformedJSON, 400, grpcInvalidArgument, false},
		{"non-utf8", fmt.Errorf("wrap: %w", route.ErrModelNotUTF8), 400, grpcInvalidArgument, false},
		{"bad grpc", route.ErrMalformedGRPC, 400, grpcInvalidArgument, false},
		{"too large", ErrTooLarge, 413, grpcResourceExhausted, false},
		{"fasthttp too large", fasthttp.ErrBodyTooLarge, 413, grpcResourceExhausted, false},
		{"uri", ErrURITooLong, 414, grpcInvalidArgument, false},
		{"headers", ErrHeaderTooLarge, 431, grpcInvalidArgument, false},
		{"route saturated", ErrRouteSaturated, 429, grpcResourceExhausted, true},
		{"overloaded", ErrOverloaded, 503, grpcUnavailable, true},
		{"no endpoint", &balancer.NoEndpointError{Nodes: 2}, 503, grpcUnavailable, true},
		{"shutting down", ErrShuttingDown, 503, grpcUnavailable, true},
		{"timeout", &UpstreamError{Err: fasthttp.ErrTimeout}, 504, grpcDeadlineExceeded, false},
		{"timeout joined with cancel", errors.Join(ErrTimeout, context.Canceled), 504, grpcDeadlineExceeded, false},
		{"deadline", context.DeadlineExceeded, 504, grpcDeadlineExceeded, false},
		{"client cancelled", errors.Join(ErrClientCancelled, context.Canceled), 499, grpcCancelled, false},
		{"draining 503", &UpstreamError{Status: 503}, 503, grpcUnavailable, true},
		{"refused", &UpstreamError{Err: syscall.ECONNREFUSED}, 502, grpcUnavailable, false},
		{"anything else", errors.New("boom"), 502, grpcUnavailable, false},
		{"response too large", &UpstreamError{Err: upstream.ErrResponseTooLarge}, 502, grpcUnavailable, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := classify(tc.err)
			if c.status != tc.status || c.grpc != tc.grpc || c.retry != tc.retry || c.typ == "" || c.code == "" {
				t.Fatalf("classify(%v) = %+v", tc.err, c)
			}
		})
	}
}
