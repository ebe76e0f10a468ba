package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const clientTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traceBackend records the traceparent each request carried.
func traceBackend(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var got []string
	be := backend(t, "t", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	})
	return be.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func TestTraceparentForwardedWhenOff(t *testing.T) {
	url, got := traceBackend(t)
	gw := startGateway(t, testConfig(staticRoute("m", url)))
	post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`, "Traceparent", clientTraceparent)
	if g := got(); len(g) != 1 || g[0] != clientTraceparent {
		t.Fatalf("node saw traceparent %q, want the client's unchanged", g)
	}
	if gw.g.tracer != nil {
		t.Fatal("tracing is on with trace_ratio 0")
	}
}

func TestTracingOn(t *testing.T) {
	url, got := traceBackend(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))))
	g, err := New(testConfig(staticRoute("m", url)), WithTracerProvider(tp), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()
	post(t, testClient(), "http://"+ln.Addr().String()+"/v1/completions", `{"model":"m"}`, "Traceparent", clientTraceparent)
	tp2 := got()
	if len(tp2) != 1 || !strings.HasPrefix(tp2[0], "00-4bf92f3577b34da6a3ce929d0e0e4736-") || tp2[0] == clientTraceparent {
		t.Fatalf("node saw %q: want the client's trace id under the gateway's span", tp2)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended", len(spans))
	}
	s := spans[0]
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || !strings.Contains(tp2[0], s.SpanContext().SpanID().String()) {
		t.Fatalf("span %v parent %v; node traceparent %s", s.SpanContext().SpanID(), s.Parent().SpanID(), tp2[0])
	}
}
