package telemetry

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/openai"
)

// Span attribute keys: the OpenTelemetry GenAI semantic conventions
// (open-telemetry/semantic-conventions-genai docs/gen-ai/gen-ai-spans.md
// and docs/registry/attributes/gen-ai.md @002c8a6e, status Development;
// gen_ai.provider.name replaces gen_ai.system of v1.36 and before), and
// the gateway's own.
const (
	AttrOperation       = attribute.Key("gen_ai.operation.name")
	AttrProvider        = attribute.Key("gen_ai.provider.name")
	AttrRequestModel    = attribute.Key("gen_ai.request.model")
	AttrRequestStream   = attribute.Key("gen_ai.request.stream")
	AttrInputTokens     = attribute.Key("gen_ai.usage.input_tokens")
	AttrOutputTokens    = attribute.Key("gen_ai.usage.output_tokens")
	AttrCacheReadTokens = attribute.Key("gen_ai.usage.cache_read.input_tokens")
	AttrReasoningTokens = attribute.Key("gen_ai.usage.reasoning.output_tokens")
	AttrFinishReasons   = attribute.Key("gen_ai.response.finish_reasons")
	AttrTimeToFirst     = attribute.Key("gen_ai.response.time_to_first_chunk")
	AttrRoute           = attribute.Key("switchyard.route")
	AttrNode            = attribute.Key("switchyard.node")
	AttrRetries         = attribute.Key("switchyard.retries")
)

// GenAI is what a finished OpenAI-style request tells its span.
type GenAI struct {
	// Endpoint gives gen_ai.operation.name: chat, text_completion or
	// embeddings (left out for other endpoints).
	Endpoint openai.Endpoint
	// Provider is gen_ai.provider.name, left out when "". The node's
	// engine ("vllm", "sglang") is the honest value for self-hosted
	// engines; the conventions' well-known values name hosted APIs.
	Provider string
	// RequestModel is the model the client asked for, as it wrote it
	// (the metrics' bounded label says "other" for unlisted models).
	RequestModel string
	Stream       bool
	// Usage from the answer (ParseResponse, Stream.Usage); tokens are
	// left out when !Usage.Found.
	Usage  openai.Usage
	Finish openai.FinishReasons
	// TTFT is the time to the first output event of a stream (0: none).
	TTFT    time.Duration
	Route   string
	Node    string // "" before a node was picked
	Retries int    // retries of this request on other nodes
}

var operationNames = [...]string{
	openai.EndpointChat:        "chat",
	openai.EndpointCompletions: "text_completion",
	openai.EndpointEmbeddings:  "embeddings",
}

// singleReasons are the finish_reasons attribute of one choice, built
// once (a string slice attribute allocates when built).
var singleReasons = func() (kv [openai.FinishOther + 1]attribute.KeyValue) {
	for r := openai.FinishStop; r <= openai.FinishOther; r++ {
		kv[r] = AttrFinishReasons.StringSlice([]string{r.String()})
	}
	return kv
}()

// AppendGenAI appends g's span attributes to dst. With one finish reason
// (n=1, the common case) it does not allocate beyond dst's growth.
func AppendGenAI(dst []attribute.KeyValue, g *GenAI) []attribute.KeyValue {
	if int(g.Endpoint) < len(operationNames) && operationNames[g.Endpoint] != "" {
		dst = append(dst, AttrOperation.String(operationNames[g.Endpoint]))
	}
	if g.Provider != "" {
		dst = append(dst, AttrProvider.String(g.Provider))
	}
	if g.RequestModel != "" {
		dst = append(dst, AttrRequestModel.String(g.RequestModel))
	}
	dst = append(dst, AttrRequestStream.Bool(g.Stream))
	if u := &g.Usage; u.Found {
		dst = append(dst, AttrInputTokens.Int64(u.PromptTokens), AttrOutputTokens.Int64(u.CompletionTokens))
		if u.CachedTokens > 0 {
			dst = append(dst, AttrCacheReadTokens.Int64(u.CachedTokens))
		}
		if u.ReasoningTokens > 0 {
			dst = append(dst, AttrReasoningTokens.Int64(u.ReasoningTokens))
		}
	}
	switch n := g.Finish.Len(); n {
	case 0:
	case 1:
		dst = append(dst, singleReasons[g.Finish.At(0)])
	default:
		reasons := make([]string, n)
		for i := range reasons {
			reasons[i] = g.Finish.At(i).String()
		}
		dst = append(dst, AttrFinishReasons.StringSlice(reasons))
	}
	if g.Stream && g.TTFT > 0 {
		dst = append(dst, AttrTimeToFirst.Float64(g.TTFT.Seconds()))
	}
	if g.Route != "" {
		dst = append(dst, AttrRoute.String(g.Route))
	}
	if g.Node != "" {
		dst = append(dst, AttrNode.String(g.Node))
	}
	return append(dst, AttrRetries.Int(g.Retries))
}

// maxGenAIAttrs bounds the attributes AppendGenAI writes.
const maxGenAIAttrs = 14

// SetGenAI sets g's attributes on span; a nil or non-recording span (tracing
// off, not sampled) costs nothing.
func SetGenAI(span trace.Span, g *GenAI) {
	if span == nil || !span.IsRecording() {
		return
	}
	var buf [maxGenAIAttrs]attribute.KeyValue
	span.SetAttributes(AppendGenAI(buf[:0], g)...)
}
