package forward

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/internal/h2key"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2/hpack"
)

// Sender sends shadow copies through the core's own tables, pools and
// retry loop: the target is a route name or model of the routing state in
// force, reached over the copy's protocol. It honours ctx (the Mirror's
// timeout and Close): cancellation aborts the exchange.
func (c *Core) Sender() shadow.Sender { return coreSender{c} }

type coreSender struct{ c *Core }

func (s coreSender) Send(ctx context.Context, target string, cp *shadow.Copy, a *shadow.Answer) error {
	st := s.c.set.Load()
	rt := st.Target(target)
	if rt == nil {
		return &route.UnknownError{Model: target, Available: st.Models()}
	}
	x := s.c.pool.Get().(*Exchange)
	defer x.finishCopy()
	x.set, x.route, x.start = st, rt, time.Now()
	r := &x.Req
	r.Method, r.URI, r.Host, r.Ctx = cp.Method, cp.URI, cp.Host, ctx
	r.Path, _, _ = bytes.Cut(cp.URI, []byte{'?'})
	if cp.GRPC {
		req, err := http.NewRequestWithContext(ctx, string(cp.Method), string(cp.URI), http.NoBody)
		if err != nil {
			return err
		}
		var fields []hpack.HeaderField
		cp.Headers(func(k, v []byte) {
			fields = append(fields, hpack.HeaderField{Name: strings.ToLower(string(k)), Value: string(v)})
		})
		req.RequestURI, req.Host = string(cp.URI), string(cp.Host)
		r.SetHTTP2(req, fields, true)
		r.Ctx, r.BodyStream, x.stream = ctx, bytes.NewReader(cp.Body), true
	} else {
		if x.copyReq == nil {
			x.copyReq = new(fasthttp.Request)
		}
		req := x.copyReq
		req.Header.DisableNormalizing()
		req.Header.SetMethodBytes(cp.Method)
		req.SetRequestURIBytes(cp.URI)
		req.Header.SetHostBytes(cp.Host)
		cp.Headers(func(k, v []byte) { req.Header.AddBytesKV(k, v) })
		req.SetBodyRaw(cp.Body)
		r.Proto, r.Body = HTTP1, cp.Body
		r.SetHTTP1(req, false)
	}
	x.ensureID()
	stop := context.AfterFunc(ctx, x.call.Abort)
	defer stop()
	if err := s.c.send(x, rt); err != nil {
		return err
	}
	a.Status = x.status
	if x.hresp != nil {
		a.ContentType = append(a.ContentType[:0], h2key.Value(x.hresp.Header, "content-type")...)
		b, err := io.ReadAll(io.LimitReader(x, int64(a.Limit())+1))
		if err != nil {
			return err
		}
		a.SetBody(b)
		return nil
	}
	a.ContentType = append(a.ContentType[:0], x.resp.Header.ContentType()...)
	a.SetBody(x.resp.Body())
	return nil
}

// finishCopy ends a shadow copy's exchange: the node is settled and the
// connection freed, without the primary's metrics, split or shadow.
func (x *Exchange) finishCopy() {
	if x.ep != nil {
		settle(x.ep, x.status)
	}
	x.releaseUpstream()
	if x.copyReq != nil {
		x.copyReq.Reset()
	}
	x.reset()
	x.core.pool.Put(x)
}
