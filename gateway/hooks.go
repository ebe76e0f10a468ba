package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

// extras are the issue-6 companions of one request: the split variant it
// was assigned and the shadow handle of its mirrored copy. The zero value
// means neither; every method is a no-op then.
type extras struct {
	split   *split.Splitter
	variant int
	shadow  *shadow.Handle
	span    trace.Span // nil when tracing is off; ended by the relay when streamed
}

// wireExtras builds the splitters and mirrors of st's routes (issue 6).
// Targets name a route (by name) or a model. Called from newState.
func (g *Gateway) wireExtras(st *state) error {
	byName := make(map[string]*route, len(st.routes))
	for _, r := range st.routes {
		byName[r.cfg.Name] = r
	}
	resolve := func(target string) *route {
		if r := byName[target]; r != nil {
			return r
		}
		return st.byModel[target]
	}
	meter := g.tel.provider.Meter("github.com/switchyard-dev/switchyard/gateway")
	for _, r := range st.routes {
		if sc := r.cfg.Split; sc != nil {
			s, err := split.New(*sc, split.WithRoute(r.cfg.Name), split.WithMeter(meter))
			if err != nil {
				return fmt.Errorf("gateway: route %q: split: %w", r.cfg.Name, err)
			}
			r.splitter = s
			r.variants = make([]*route, s.Len())
			for i := range r.variants {
				v := s.Variant(i)
				if r.variants[i] = resolve(v.Target); r.variants[i] == nil {
					return fmt.Errorf("gateway: route %q: split variant %q: no route or model %q", r.cfg.Name, v.Name, v.Target)
				}
			}
		}
		if sc := r.cfg.Shadow; sc != nil {
			m, err := shadow.New(context.Background(), *sc, gwSender{g}, shadow.WithRoute(r.cfg.Name), shadow.WithMeter(meter), shadow.WithLogger(g.log))
			if err != nil {
				return fmt.Errorf("gateway: route %q: shadow: %w", r.cfg.Name, err)
			}
			r.mirror = m
		}
	}
	return nil
}

// closeExtras stops the mirrors of a retired state (in the background:
// Close waits a bounded time for queued copies).
func (st *state) closeExtras() {
	for _, r := range st.routes {
		if r.mirror != nil {
			go func() { _ = r.mirror.Close() }()
		}
	}
}

// resolveVariant is where a route with a split resolves the request's
// variant: the variant's target route serves the request, and the variant
// is named in the response header. It also offers the request to the
// route's mirror, before forwarding (the mirror copies the request). It
// returns the route that serves the request.
func (g *Gateway) resolveVariant(r *route, ctx *fasthttp.RequestCtx) (*route, extras) {
	var x extras
	if r.mirror != nil && !ctx.Request.IsBodyStream() {
		// A streamed body cannot be copied without consuming it: such
		// requests are not mirrored.
		x.shadow = r.mirror.Offer(ctx, ctx.Request.Header.Peek(hdrRequestID))
	}
	if r.splitter == nil {
		return r, x
	}
	a := r.splitter.AssignRequest(ctx)
	x.split, x.variant = r.splitter, a.Index
	return r.variants[a.Index], x
}

// setVariantHeader names the variant on the response.
func (x *extras) setVariantHeader(resp *fasthttp.Response) {
	if x.split != nil {
		resp.Header.SetBytesKV(x.split.VariantHeader(), x.split.Variant(x.variant).NameBytes())
	}
}

// offerShadow is where a finished primary request is handed to the mirror
// and the split records the variant's outcome. resp is the buffered
// primary response, or nil for a streamed one (its body was teed into the
// handle by the relay).
func (x *extras) finish(status int, resp *fasthttp.Response, contentType []byte, latency time.Duration, failed bool) {
	if x.split != nil {
		x.split.Record(x.variant, split.Result{Status: status, Err: failed, Latency: latency})
	}
	if x.shadow != nil {
		if resp != nil {
			x.shadow.FinishResponse(resp, latency)
		} else {
			x.shadow.Finish(shadow.Primary{Status: status, ContentType: contentType, Latency: latency})
		}
	}
}

// gwSender sends shadow copies through the gateway's own tables and pools:
// the target is a route name or model of the current state.
type gwSender struct{ g *Gateway }

func (s gwSender) Send(ctx context.Context, target string, req *fasthttp.Request, resp *fasthttp.Response) error {
	st := s.g.state.Load()
	var r *route
	for _, c := range st.routes {
		if c.cfg.Name == target {
			r = c
			break
		}
	}
	if r == nil {
		r = st.byModel[target]
	}
	if r == nil {
		return &UnknownRouteError{Model: target, Available: st.models}
	}
	deadline, _ := ctx.Deadline()
	ep, err := s.g.exchange(r, r.table.Load(), 0, req, resp, false, deadline, true)
	if err != nil {
		return err
	}
	settle(ep, resp.StatusCode())
	return nil
}
