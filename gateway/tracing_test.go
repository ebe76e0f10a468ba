package gateway

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

const clientTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traceBackend records the traceparent each request carried.
func traceBackend(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var got []string
	be := backend(t, "t", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost { // not the health checker's probes
			mu.Lock()
			got = append(got, r.Header.Get("Traceparent"))
			mu.Unlock()
		}
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
	if gw.g.tracing != nil {
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

func TestOTLPTracesURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"},
		{"https://collector:4318/custom/traces", "https://collector:4318/custom/traces"},
		{"ftp://x:1", ""},
		{"http://:4318", ""},
		{"%zz", ""},
	}
	for _, tc := range tests {
		got, err := config.OTLPTracesURL(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("config.OTLPTracesURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// otlpReceiver is a real OTLP/HTTP trace receiver on loopback: it decodes
// each ExportTraceServiceRequest and keeps its spans.
func otlpReceiver(t *testing.T) (string, func() []*tracepb.Span) {
	t.Helper()
	var mu sync.Mutex
	var spans []*tracepb.Span
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(io.LimitReader(body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				spans = append(spans, ss.GetSpans()...)
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), func() []*tracepb.Span {
		mu.Lock()
		defer mu.Unlock()
		return append([]*tracepb.Span(nil), spans...)
	}
}

// TestOTLPExport: telemetry.otlp_endpoint exports the server span of a
// request that came with a sampled traceparent (trace_ratio 0: parent-based
// only) to a real OTLP/HTTP receiver, under the client's trace id, and the
// node continues the same trace.
func TestOTLPExport(t *testing.T) {
	endpoint, exported := otlpReceiver(t)
	url, got := traceBackend(t)
	cfg := testConfig(staticRoute("m", url))
	cfg.Telemetry.OTLPEndpoint = endpoint
	gw := startGateway(t, cfg)
	if gw.g.tracing == nil {
		t.Fatal("tracing off with an OTLP endpoint")
	}
	resp, _ := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`, "Traceparent", clientTraceparent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// A request without traceparent is not sampled at ratio 0.
	post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
	gw.stop() // Serve returns after flushing the batch
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spans := exported()
	if len(spans) != 1 {
		t.Fatalf("receiver got %d spans, want 1 (the traced request's)", len(spans))
	}
	s := spans[0]
	if hex.EncodeToString(s.GetTraceId()) != traceID || hex.EncodeToString(s.GetParentSpanId()) != "00f067aa0ba902b7" ||
		s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("span trace %x parent %x kind %v: want trace %s under the client's span, kind server",
			s.GetTraceId(), s.GetParentSpanId(), s.GetKind(), traceID)
	}
	var status int64
	for _, a := range s.GetAttributes() {
		if a.GetKey() == "http.response.status_code" {
			status = a.GetValue().GetIntValue()
		}
	}
	if status != http.StatusOK {
		t.Fatalf("span status attribute %d, want 200", status)
	}
	tp := got()
	if len(tp) != 2 || tp[0] != "00-"+traceID+"-"+hex.EncodeToString(s.GetSpanId())+"-01" {
		t.Fatalf("node saw traceparents %q; want the first under span %x of trace %s", tp, s.GetSpanId(), traceID)
	}
	// The other request carries the gateway's not-sampled decision.
	if !strings.HasSuffix(tp[1], "-00") || strings.Contains(tp[1], traceID) {
		t.Fatalf("untraced request reached the node with traceparent %q, want a not-sampled one", tp[1])
	}
}

func TestOTLPEndpointInvalidRefusedByNew(t *testing.T) {
	cfg := testConfig(staticRoute("m", "http://127.0.0.1:1"))
	cfg.Telemetry.OTLPEndpoint = "udp://127.0.0.1:4318"
	_, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "telemetry.otlp_endpoint") {
		t.Fatalf("New: %v, want a config error naming telemetry.otlp_endpoint", err)
	}
}

// TestGenAISpan (issue 15): a traced chat completion's exported span
// carries the OpenTelemetry GenAI attributes: the model as the client
// named it (on a "*" route, where the metrics' label is bounded), the
// engine's usage, the finish reasons, and the route, node and retry count.
func TestGenAISpan(t *testing.T) {
	endpoint, exported := otlpReceiver(t)
	nodes := startSims(t, 1, "any")
	rc := simRoute("all", nodes)
	rc.Match = MatchConfig{Models: []string{"*"}}
	rc.UpstreamModel = "any" // the engine's name; the span keeps the client's
	cfg := testConfig(rc)
	cfg.Telemetry.OTLPEndpoint = endpoint
	gw := startGateway(t, cfg)
	resp, body := post(t, testClient(), gw.url("/v1/chat/completions"),
		`{"model":"my-model-7b","max_tokens":5,"messages":[{"role":"user","content":"hello there"}]}`, "Traceparent", clientTraceparent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var answer struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
		} `json:"usage"`
		Choices []struct {
			Finish string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || len(answer.Choices) != 1 || answer.Usage.Completion == 0 {
		t.Fatalf("answer %s: %v", body, err)
	}
	gw.stop() // flushes the exporter
	spans := exported()
	if len(spans) != 1 {
		t.Fatalf("receiver got %d spans, want 1", len(spans))
	}
	attrs := map[string]string{}
	for _, a := range spans[0].GetAttributes() {
		v := a.GetValue()
		switch {
		case v.GetArrayValue() != nil:
			var parts []string
			for _, e := range v.GetArrayValue().GetValues() {
				parts = append(parts, e.GetStringValue())
			}
			attrs[a.GetKey()] = strings.Join(parts, ",")
		case v.GetStringValue() != "":
			attrs[a.GetKey()] = v.GetStringValue()
		default:
			attrs[a.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		}
	}
	want := map[string]string{
		"gen_ai.operation.name":          "chat",
		"gen_ai.request.model":           "my-model-7b",
		"gen_ai.usage.input_tokens":      strconv.FormatInt(answer.Usage.Prompt, 10),
		"gen_ai.usage.output_tokens":     strconv.FormatInt(answer.Usage.Completion, 10),
		"gen_ai.response.finish_reasons": answer.Choices[0].Finish,
		"switchyard.route":               "all",
		"switchyard.node":                nodes[0].ID(),
		"switchyard.retries":             "0",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("span attribute %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
}
