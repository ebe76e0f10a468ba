package forward

import (
	"time"

	"github.com/switchyard-dev/switchyard/gateway/openai"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
)

// This file is the OpenAI side of an exchange: the request body rewritten
// for the node (the route's upstream model, stream_options.include_usage),
// the usage and finish reasons read from the answer (buffered, or relayed
// event by event with the usage event the gateway asked for removed), and
// what they feed: token metrics, time to first token, the tenant's token
// budget, the span.

// seriesOf returns the series a request served by rt counts in: its
// model's on rt, or, when a split or fallback sent it to rt from the
// matched route, rt's own model (the variant's).
func seriesOf(rt *route.Route, model []byte, redirected bool) *telemetry.ModelStats {
	if redirected {
		if own := rt.PrimaryModel(); own != nil {
			return rt.Models().Lookup(own)
		}
	}
	return rt.Models().Lookup(model)
}

// rewriteBody edits an OpenAI request body for rt's nodes: rt's upstream
// model name, and include_usage for a stream whose tokens the gateway
// counts. The client's body is left alone; the new one is one of
// x.bodyBufs, and the model is copied first (it aliased the old body).
func (x *Exchange) rewriteBody(rt *route.Route) {
	r := &x.Req
	x.usageMode = openai.UsageNone
	if !x.jsonBody || r.Proto == GRPC {
		return
	}
	rw := openai.Rewrite{Model: rt.UpstreamModel()}
	if rw.Model == string(x.model) {
		rw.Model = ""
	}
	rw.IncludeUsage = x.wantsSSE && rt.InjectUsage() &&
		(x.endpoint == openai.EndpointChat || x.endpoint == openai.EndpointCompletions)
	if rw.Model == "" && !rw.IncludeUsage {
		return
	}
	next := 1 - x.bodyIdx
	b, res, err := openai.RewriteRequest(x.bodyBufs[next][:0], r.Body, rw)
	if err != nil {
		return // the scanner took it; what the node makes of it is the node's
	}
	x.usageMode = res.Usage
	if !res.Changed {
		return
	}
	x.modelBuf = append(x.modelBuf[:0], x.model...)
	x.model = x.modelBuf
	x.bodyBufs[next], x.bodyIdx = b, next
	r.Body = b
	if r.h1 != nil {
		r.h1.SetBodyRaw(b) // the client's buffer goes back to fasthttp's pool
	}
}

// startSSE puts the OpenAI event-stream relay between the node's body and
// the client: whole events, the usage event removed when the gateway
// asked for it, usage and token times read on the way.
func (x *Exchange) startSSE() {
	x.times = telemetry.TokenTimes{Model: x.ms}
	if x.node != nil {
		x.times.Node = x.node.Stats()
	}
	o := openai.StreamOptions{StripUsage: x.usageMode == openai.UsageAdded, Start: x.start, Timer: &x.times}
	if ka := x.route.StreamKeepAlive(); ka > 0 {
		x.sse.Stream.Reset(o)
		x.ka = newKeepAlive(x.body, &x.sse.Stream, ka, &x.core.keepAlives)
		x.body = x.ka
	} else {
		x.sse.Reset(x.body, o, nil)
		x.body = &x.sse
	}
	x.sseOn = true
}

// readUsage reads the usage and finish reasons of a buffered OpenAI
// answer.
func (x *Exchange) readUsage(body []byte) {
	if x.endpoint == openai.EndpointOther || len(body) == 0 {
		return
	}
	if rsp, err := openai.ParseResponse(body); err == nil {
		x.usage, x.finish = rsp.Usage, rsp.Finish
	}
}

// ttft is a stream's time to its first output event (0: none).
func (x *Exchange) ttft() time.Duration {
	if !x.sseOn {
		return 0
	}
	d, _ := x.sse.TTFT()
	return d
}

// settleTokens counts the answer's tokens: per route and model, per
// tenant, and against the tenant's token budget.
func (x *Exchange) settleTokens(ms *telemetry.ModelStats, now time.Time) {
	if x.sseOn {
		x.usage, x.finish = x.sse.Usage(), x.sse.FinishReasons()
	}
	u := &x.usage
	if !u.Found || ms == nil {
		return
	}
	ms.Tokens(u.PromptTokens, u.CompletionTokens)
	if t := x.tenant; t != nil {
		ms.Tenant(t.Name()).Add(u.PromptTokens, u.CompletionTokens)
		t.Charge(now, u.PromptTokens+u.CompletionTokens)
	}
}

// traceGenAI sets the GenAI attributes on a recording span.
func (x *Exchange) traceGenAI(ms *telemetry.ModelStats) {
	if x.span == nil || !x.span.IsRecording() {
		return
	}
	g := telemetry.GenAI{
		Endpoint: x.endpoint, Stream: x.stream, Usage: x.usage, Finish: x.finish,
		TTFT: x.ttft(), Retries: x.retries,
	}
	switch {
	case len(x.model) > 0:
		g.RequestModel = string(x.model) // the client's own name (only sampled spans pay the copy)
	case ms != nil:
		g.RequestModel = ms.Model()
	}
	if x.route != nil {
		g.Route = x.route.Name()
	}
	if x.node != nil {
		g.Node = x.node.ID()
		if x.route != nil {
			g.Provider = x.route.Meta()[g.Node].Engine()
		}
	}
	telemetry.SetGenAI(x.span, &g)
}
