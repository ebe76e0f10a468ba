//go:build !race

package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/openai"
)

// TestRecordAlloc: everything the request path records (once per
// request: the model lookup, a known tenant's counters) allocates nothing.
func TestRecordAlloc(t *testing.T) {
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	r := m.Route("r")
	x := r.Models([]string{"llama-3-70b", "qwen"})
	nd := m.Node("r", "n")
	x.Lookup([]byte("llama-3-70b")).Tenant("team-a") // a tenant's first tokens allocate its counters
	model := []byte("llama-3-70b")
	var timer TokenTimes
	if n := testing.AllocsPerRun(1000, func() {
		ms := x.Lookup(model)
		timer = TokenTimes{Model: ms, Node: nd}
		timer.FirstToken(80 * time.Millisecond)
		timer.InterToken(4 * time.Millisecond)
		ms.Observe(200, 2*time.Second)
		ms.Tokens(100, 20)
		ms.Tenant("team-a").Add(100, 20)
		nd.Observe(200, 30*time.Millisecond)
		r.Observe(404, time.Millisecond)
		r.Retry()
		r.ObserveQueue(flow.Batch, 40*time.Millisecond, flow.Dispatched)
	}); n != 0 {
		t.Fatalf("recording: %v allocations per request", n)
	}
}

// TestAppendGenAIAlloc: a span's attributes with one finish reason are
// built without allocating.
func TestAppendGenAIAlloc(t *testing.T) {
	r, err := openai.ParseResponse([]byte(`{"choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	g := GenAI{Endpoint: openai.EndpointChat, Provider: "vllm", RequestModel: "m", Usage: r.Usage, Finish: r.Finish, Route: "r", Node: "n", Retries: 1}
	buf := make([]attribute.KeyValue, 0, maxGenAIAttrs)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendGenAI(buf[:0], &g) }); n != 0 {
		t.Fatalf("AppendGenAI: %v allocations", n)
	}
}
