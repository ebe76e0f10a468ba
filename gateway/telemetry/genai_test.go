package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-dev/switchyard/gateway/openai"
)

// TestSetGenAI records a span with the SDK and reads its attributes back:
// the GenAI names with the usage and finish reasons parsed from a vLLM
// answer, and the gateway's route, node and retries.
func TestSetGenAI(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	r, err := openai.ParseResponse([]byte(`{"choices":[{"finish_reason":"stop"},{"finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "gateway POST")
	SetGenAI(span, &GenAI{Endpoint: openai.EndpointChat, Provider: "vllm", RequestModel: "llama-3-70b", Stream: true,
		Usage: r.Usage, Finish: r.Finish, TTFT: 250 * time.Millisecond, Route: "llama", Node: "gpu-7", Retries: 1})
	span.End()
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range rec.Ended()[0].Attributes() {
		got[kv.Key] = kv.Value
	}
	want := map[attribute.Key]any{
		"gen_ai.operation.name":                "chat",
		"gen_ai.provider.name":                 "vllm",
		"gen_ai.request.model":                 "llama-3-70b",
		"gen_ai.request.stream":                true,
		"gen_ai.usage.input_tokens":            int64(12),
		"gen_ai.usage.output_tokens":           int64(9),
		"gen_ai.usage.cache_read.input_tokens": int64(8),
		"gen_ai.response.finish_reasons":       []string{"stop", "length"},
		"gen_ai.response.time_to_first_chunk":  0.25,
		"switchyard.route":                     "llama",
		"switchyard.node":                      "gpu-7",
		"switchyard.retries":                   int64(1),
	}
	if len(got) != len(want) {
		t.Errorf("%d attributes, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v.Type() != anyValue(w).Type() || v.String() != anyValue(w).String() {
			t.Errorf("%s = %v, want %v", k, got[k].String(), w)
		}
	}
}

func anyValue(v any) attribute.Value {
	switch v := v.(type) {
	case string:
		return attribute.StringValue(v)
	case bool:
		return attribute.BoolValue(v)
	case int64:
		return attribute.Int64Value(v)
	case float64:
		return attribute.Float64Value(v)
	case []string:
		return attribute.StringSliceValue(v)
	}
	panic(v)
}

// TestGenAIOmits: no usage, no finish reason, an unknown endpoint, a
// buffered answer and no node leave their attributes out; a nil or
// non-recording span is a no-op.
func TestGenAIOmits(t *testing.T) {
	kv := AppendGenAI(nil, &GenAI{Endpoint: openai.EndpointOther, Route: "r", TTFT: time.Second})
	keys := map[attribute.Key]bool{}
	for _, a := range kv {
		keys[a.Key] = true
	}
	if len(kv) != 3 || !keys[AttrRequestStream] || !keys[AttrRoute] || !keys[AttrRetries] {
		t.Fatalf("attributes %v", kv)
	}
	SetGenAI(nil, &GenAI{})
	_, span := noop.NewTracerProvider().Tracer("t").Start(context.Background(), "x")
	SetGenAI(span, &GenAI{})
}
