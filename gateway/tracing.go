package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider makes the gateway trace through tp (which owns the
// sampler and the exporter; the embedder shuts it down). Without it, a
// positive Telemetry.TraceRatio or a Telemetry.OTLPEndpoint builds an SDK
// provider with parent-based sampling at that ratio, exporting to the
// endpoint if one is set (spans are otherwise sampled, timed and
// propagated in traceparent, but not exported); a zero ratio and no
// endpoint turn tracing off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(g *Gateway) { g.tp = tp }
}

// OTLP export bounds: each export call, the batch period, the queue.
const (
	otlpExportTimeout = 10 * time.Second
	otlpBatchTimeout  = 2 * time.Second
	otlpMaxQueue      = 2048
)

// setupTracing picks the tracer. With tracing off g.tracer stays nil and
// the request path costs one nil check: no span, no allocation; the
// client's traceparent is forwarded untouched with the other headers.
func (g *Gateway) setupTracing(tc TelemetryConfig) error {
	if g.tp == nil && (tc.TraceRatio > 0 || tc.OTLPEndpoint != "") {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.TraceRatio)))}
		if tc.OTLPEndpoint != "" {
			u, err := otlpTracesURL(tc.OTLPEndpoint)
			if err != nil {
				return fmt.Errorf("%w: telemetry.otlp_endpoint %q: %v", ErrConfig, tc.OTLPEndpoint, err)
			}
			// New does not connect: the first export does, within its
			// timeout, and failures are retried then dropped by the
			// exporter, never blocking requests.
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(u), otlptracehttp.WithTimeout(otlpExportTimeout))
			if err != nil {
				return fmt.Errorf("gateway: otlp exporter: %w", err)
			}
			opts = append(opts, sdktrace.WithBatcher(exp,
				sdktrace.WithBatchTimeout(otlpBatchTimeout),
				sdktrace.WithExportTimeout(otlpExportTimeout),
				sdktrace.WithMaxQueueSize(otlpMaxQueue)))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		g.tp, g.ownTP = tp, tp
	}
	if g.tp != nil {
		g.tracer = g.tp.Tracer("github.com/switchyard-dev/switchyard/gateway")
	}
	return nil
}

// otlpTracesURL checks an OTLP/HTTP endpoint and returns its traces URL:
// http or https, a host and port, the path /v1/traces unless one is given.
func otlpTracesURL(endpoint string) (string, error) {
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

// shutdownTracing flushes and stops the tracer provider the gateway built
// (never one passed with WithTracerProvider).
func (g *Gateway) shutdownTracing(ctx context.Context) error {
	if g.ownTP == nil {
		return nil
	}
	if err := g.ownTP.Shutdown(ctx); err != nil {
		return fmt.Errorf("gateway: tracing shutdown: %w", err)
	}
	return nil
}

var traceContext = propagation.TraceContext{}

// fastHeaderCarrier adapts fasthttp request headers to OTel propagation.
type fastHeaderCarrier struct{ h *fasthttp.RequestHeader }

func (c fastHeaderCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c fastHeaderCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c fastHeaderCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}

// startSpanH1 starts the server span of an HTTP/1.1 request from its
// traceparent and rewrites traceparent so the node continues the trace
// under the gateway's span.
func (g *Gateway) startSpanH1(ctx *fasthttp.RequestCtx) trace.Span {
	carrier := fastHeaderCarrier{&ctx.Request.Header}
	pctx := traceContext.Extract(context.Background(), carrier)
	sctx, span := g.tracer.Start(pctx, "gateway "+string(ctx.Method()), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("url.path", string(ctx.Path()))))
	if span.SpanContext().IsValid() {
		traceContext.Inject(sctx, carrier)
	}
	return span
}

// startSpanH2 is startSpanH1 for HTTP/2 and gRPC.
func (g *Gateway) startSpanH2(req *http.Request) trace.Span {
	carrier := propagation.HeaderCarrier(req.Header)
	pctx := traceContext.Extract(req.Context(), carrier)
	sctx, span := g.tracer.Start(pctx, "gateway "+req.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("url.path", req.URL.Path)))
	if span.SpanContext().IsValid() {
		traceContext.Inject(sctx, carrier)
	}
	return span
}

// endSpan records the status and ends span; a nil span is tracing off.
func endSpan(span trace.Span, status int) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
