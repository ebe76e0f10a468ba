package gateway

import "github.com/valyala/fasthttp"

// resolveVariant is where a route with a Split block resolves the request's
// variant (issue 6): gateway/split's Splitter.Assign(key, override) names
// the variant, the request is sent to that variant's app and the variant is
// named in the split's response header. Until gateway/split is wired in,
// routes with a split serve their own app and this is a no-op.
func (g *Gateway) resolveVariant(r *route, ctx *fasthttp.RequestCtx) {
	_ = r
	_ = ctx
}

// offerShadow is where a finished primary request is offered to the
// route's mirror (issue 6): gateway/shadow's Mirror.Sample(key) decides,
// then Mirror.Submit(request copy, primary result) queues the copy without
// blocking. It runs after the primary response is complete and before the
// request objects are released. Until gateway/shadow is wired in it is a
// no-op.
func (g *Gateway) offerShadow(r *route, ctx *fasthttp.RequestCtx) {
	_ = r
	_ = ctx
}
