package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// OTLP export bounds: each export call, the batch period, the queue.
const (
	otlpExportTimeout = 10 * time.Second
	otlpBatchTimeout  = 2 * time.Second
	otlpMaxQueue      = 2048
)

// Tracing is the gateway's tracer. A nil *Tracing is tracing off: the
// request path then costs one nil check, no span, no allocation, and the
// client's traceparent is forwarded untouched with the other headers.
type Tracing struct {
	tracer trace.Tracer
	own    *sdktrace.TracerProvider // built here (OTLP export); shut down by Shutdown
}

// NewTracing picks the tracer. With tp (WithTracerProvider) the gateway
// traces through it (tp owns sampler and exporter; the embedder shuts it
// down). Without it, a positive TraceRatio or an OTLPEndpoint builds an SDK
// provider with parent-based sampling at that ratio, exporting to the
// endpoint if one is set (spans are otherwise sampled, timed and
// propagated in traceparent, but not exported); a zero ratio and no
// endpoint turn tracing off (nil).
func NewTracing(tc config.TelemetryConfig, tp trace.TracerProvider) (*Tracing, error) {
	t := &Tracing{}
	if tp == nil && (tc.TraceRatio > 0 || tc.OTLPEndpoint != "") {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.TraceRatio)))}
		if tc.OTLPEndpoint != "" {
			u, err := config.OTLPTracesURL(tc.OTLPEndpoint)
			if err != nil {
				return nil, fmt.Errorf("%w: telemetry.otlp_endpoint %q: %v", config.ErrConfig, tc.OTLPEndpoint, err)
			}
			// New does not connect: the first export does, within its
			// timeout, and failures are retried then dropped by the
			// exporter, never blocking requests.
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(u), otlptracehttp.WithTimeout(otlpExportTimeout))
			if err != nil {
				return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
			}
			opts = append(opts, sdktrace.WithBatcher(exp,
				sdktrace.WithBatchTimeout(otlpBatchTimeout),
				sdktrace.WithExportTimeout(otlpExportTimeout),
				sdktrace.WithMaxQueueSize(otlpMaxQueue)))
		}
		own := sdktrace.NewTracerProvider(opts...)
		tp, t.own = own, own
	}
	if tp == nil {
		return nil, nil
	}
	t.tracer = tp.Tracer("github.com/switchyard-dev/switchyard/gateway")
	return t, nil
}

// Shutdown flushes and stops the provider NewTracing built (never one
// passed in). Safe on nil.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.own == nil {
		return nil
	}
	if err := t.own.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: tracing shutdown: %w", err)
	}
	return nil
}

var traceContext = propagation.TraceContext{}

// Start starts the server span of a request from the traceparent in
// carrier and rewrites traceparent there, so the node continues the trace
// under the gateway's span.
func (t *Tracing) Start(carrier propagation.TextMapCarrier, method, path string) trace.Span {
	pctx := traceContext.Extract(context.Background(), carrier)
	sctx, span := t.tracer.Start(pctx, "gateway "+method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("url.path", path)))
	if span.SpanContext().IsValid() {
		traceContext.Inject(sctx, carrier)
	}
	return span
}

// End records the status and ends span; a nil span is tracing off.
func End(span trace.Span, status int) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
