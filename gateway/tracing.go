package gateway

import (
	"context"
	"net/http"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider makes the gateway trace through tp (which owns the
// sampler and the exporter). Without it, a positive
// Telemetry.TraceRatio builds an SDK provider with parent-based sampling
// at that ratio and no exporter (spans are sampled, timed and propagated
// in traceparent, but not exported); a zero ratio turns tracing off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(g *Gateway) { g.tp = tp }
}

// setupTracing picks the tracer. With tracing off g.tracer stays nil and
// the request path costs one nil check: no span, no allocation; the
// client's traceparent is forwarded untouched with the other headers.
func (g *Gateway) setupTracing(ratio float64) {
	if g.tp == nil && ratio > 0 {
		g.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	}
	if g.tp != nil {
		g.tracer = g.tp.Tracer("github.com/switchyard-dev/switchyard/gateway")
	}
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
