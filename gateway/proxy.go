package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/balancer"
)

// maxPathBytes bounds the request path; longer paths get 414.
const maxPathBytes = 8 << 10

// maxAvoid bounds the nodes one request skips (failed or full).
const maxAvoid = 8

var (
	hdrRequestID  = "X-Request-Id"
	hdrRetryAfter = "Retry-After"
	pathModels    = "/v1/models"
	ctJSON        = "application/json"
)

// scratch is per-request scratch space, pooled.
type scratch struct {
	buf []byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 256)} }}

// serveHTTP1 is the HTTP/1.1 hot path: admission, request id, routing,
// forwarding. It keeps nothing of ctx after it returns, except through
// the response body stream, which fasthttp closes when the response is
// written.
func (g *Gateway) serveHTTP1(ctx *fasthttp.RequestCtx) {
	start := ctx.Time() // read by fasthttp just before calling the handler
	st := g.state.Load()
	if g.inflight.Add(1) > int64(st.cfg.Limits.MaxConcurrent) {
		g.inflight.Add(-1)
		g.ensureRequestID(ctx)
		g.failH1(ctx, st, nil, ErrOverloaded, start)
		return
	}
	g.ensureRequestID(ctx)
	if !ctx.IsGet() && framingConflict(ctx.Request.Header.RawHeaders()) {
		// Content-Length and Transfer-Encoding together: a request
		// smuggling attempt (RFC 9112 §6.3). Refuse it and close the
		// connection so nothing after it on the wire is read as a request.
		g.failH1(ctx, st, nil, errFramingConflict, start)
		ctx.SetConnectionClose()
		g.inflight.Add(-1)
		return
	}
	if g.streamBodies && ctx.Request.IsBodyStream() {
		if err := g.prepareBody(ctx, st); err != nil {
			g.failH1(ctx, st, nil, err, start)
			ctx.SetConnectionClose()
			g.inflight.Add(-1)
			return
		}
	}
	var span trace.Span
	if g.tracer != nil {
		span = g.startSpanH1(ctx)
	}
	if g.dispatchH1(ctx, st, start, span) {
		return // a streamed response ends the request in relay.CloseWithError
	}
	endSpan(span, ctx.Response.StatusCode())
	if st.cfg.Telemetry.AccessLog {
		g.accessLog(ctx.Method(), ctx.Path(), ctx.Response.StatusCode(), time.Since(start), ctx.Request.Header.Peek(hdrRequestID), false)
	}
	g.inflight.Add(-1)
}

var errFramingConflict = fmt.Errorf("%w: both Content-Length and Transfer-Encoding", ErrBadRequest)

// framingConflict reports whether raw request headers carry both
// Content-Length and Transfer-Encoding (fasthttp silently prefers the
// latter).
func framingConflict(raw []byte) bool {
	const cl, te = "content-length:", "transfer-encoding:"
	var hasCL, hasTE bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		switch {
		case len(line) == 0:
		case line[0]|0x20 == 'c':
			hasCL = hasCL || len(line) >= len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl))
		case line[0]|0x20 == 't':
			hasTE = hasTE || len(line) >= len(te) && bytes.EqualFold(line[:len(te)], []byte(te))
		}
	}
	return hasCL && hasTE
}

// prepareBody decides, for a request whose body fasthttp streams
// (Limits.StreamBodyOver), whether the body is read now (small, chunked,
// or needed for routing) or streamed to the node, and enforces
// Limits.MaxBodyBytes.
func (g *Gateway) prepareBody(ctx *fasthttp.RequestCtx, st *state) error {
	lim := &st.cfg.Limits
	cl := ctx.Request.Header.ContentLength()
	switch {
	case cl > lim.MaxBodyBytes:
		return ErrTooLarge
	case cl >= 0 && cl <= lim.StreamBodyOver:
		ctx.Request.Body() // complete already: materialize
	case cl > lim.StreamBodyOver:
		if st.needBody && ctx.IsPost() && isJSONRequest(ctx.Request.Header.ContentType(), nil) {
			ctx.Request.Body() // routing reads it; bounded by Content-Length
		}
		// else: stream it to the node.
	default: // chunked: read with the limit
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		var body []byte
		r := ctx.RequestBodyStream()
		for {
			n, err := r.Read(*bp)
			body = append(body, (*bp)[:n]...)
			if len(body) > lim.MaxBodyBytes {
				return ErrTooLarge
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return errors.Join(ErrBadRequest, err)
			}
		}
		ctx.Request.SetBody(body)
	}
	return nil
}

// dispatchH1 routes and forwards one request. It reports whether the
// response streams (and so owns the in-flight count until relay.CloseWithError).
func (g *Gateway) dispatchH1(ctx *fasthttp.RequestCtx, st *state, start time.Time, span trace.Span) bool {
	path := ctx.Path()
	if len(path) > maxPathBytes {
		g.failH1(ctx, st, nil, ErrURITooLong, start)
		ctx.SetConnectionClose()
		return false
	}
	if string(path) == pathModels && ctx.IsGet() {
		ctx.SetContentType(ctJSON)
		ctx.SetBody(st.modelsJSON)
		return false
	}
	sc := scratchPool.Get().(*scratch)
	r, f, err := st.matchH1(ctx, path, sc)
	if err != nil {
		scratchPool.Put(sc)
		g.failH1(ctx, st, nil, err, start)
		return false
	}
	stream := r.wantsStream(f.stream, ctx.Request.Header.PeekCanonical(keyAccept), path)
	scratchPool.Put(sc)
	r, x := g.resolveVariant(r, ctx)
	x.span = span
	return g.forwardH1(ctx, st, r, stream, start, x)
}

// matchH1 finds the route of an HTTP/1.1 request.
func (st *state) matchH1(ctx *fasthttp.RequestCtx, path []byte, sc *scratch) (*route, jsonFields, error) {
	var f jsonFields
	model, hasModel := kserveModel(path)
	if hasModel {
		if !utf8Valid(model) {
			return nil, f, ErrModelNotUTF8
		}
	} else if st.needBody && ctx.IsPost() && !ctx.Request.IsBodyStream() && isJSONRequest(ctx.Request.Header.ContentType(), ctx.Request.Body()) {
		var err error
		f, sc.buf, err = scanJSON(ctx.Request.Body(), sc.buf)
		if err != nil {
			return nil, f, err
		}
		model, hasModel = f.model, f.hasModel
	}
	r, err := st.pick(ctx.Host(), path, &ctx.Request.Header, model, hasModel)
	return r, f, err
}

// pick applies the route order: the model index, the ordered routes, the
// "*" route.
func (st *state) pick(host, path []byte, h headerPeeker, model []byte, hasModel bool) (*route, error) {
	if hasModel {
		if r := st.byModel[string(model)]; r != nil {
			return r, nil
		}
	}
	for _, r := range st.ordered {
		if r.matches(host, path, h, model, hasModel) {
			return r, nil
		}
	}
	if st.fallback != nil {
		return st.fallback, nil
	}
	e := &UnknownRouteError{Path: string(path), Available: st.models}
	if hasModel {
		e.Model = string(model)
	}
	return nil, e
}

// isJSONRequest: a JSON content type; or none, or the form type that
// `curl -d` sends by default, and a body starting with '{'.
func isJSONRequest(ct, body []byte) bool {
	if bytes.Contains(ct, []byte("json")) {
		return true
	}
	if len(ct) > 0 && !bytes.HasPrefix(ct, []byte("application/x-www-form-urlencoded")) {
		return false
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// wantsStream decides whether the response is relayed as it arrives.
func (r *route) wantsStream(bodyStream bool, accept, path []byte) bool {
	switch r.stream {
	case streamAlways:
		return true
	case streamNever:
		return false
	}
	return bodyStream || bytes.Contains(accept, []byte("text/event-stream")) || bytes.HasSuffix(path, []byte("generate_stream"))
}

// ensureRequestID keeps the client's X-Request-Id or sets a generated one.
func (g *Gateway) ensureRequestID(ctx *fasthttp.RequestCtx) {
	if len(ctx.Request.Header.PeekCanonical(keyRequestID)) > 0 {
		return
	}
	var b [len(g.idPrefix) + 1 + 16]byte
	copy(b[:], g.idPrefix[:])
	b[len(g.idPrefix)] = '-'
	n := g.reqSeq.Add(1)
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i > len(g.idPrefix); i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	ctx.Request.Header.SetCanonical(keyRequestID, b[:])
}

// Canonical header keys for SetCanonical and PeekCanonical (no per-call
// normalizing; the server normalizes request header names as it parses).
var (
	keyAccept       = []byte("Accept")
	keyRequestID    = []byte(hdrRequestID)
	keyForwardedFor = []byte(hdrForwardedFor)
)

// forwardH1 sends the request to a node of r and answers the client.
func (g *Gateway) forwardH1(ctx *fasthttp.RequestCtx, st *state, r *route, stream bool, start time.Time, x extras) bool {
	tbl := r.table.Load()
	var key uint64
	if r.hashed {
		key = xxhash.Sum64(ctx.Request.Header.Peek(r.cfg.HashHeader))
	}
	req := &ctx.Request
	clientClose := req.Header.ConnectionClose()
	req.Header.ResetConnectionClose()
	if hasHopHeader(req.Header.RawHeaders()) {
		for _, h := range hopHeaders {
			req.Header.Del(h)
		}
	}
	if ctx.IsTLS() {
		req.URI().SetScheme("http")
	}
	appendForwardedFor(ctx)
	var deadline time.Time
	if r.cfg.Timeouts.Total > 0 {
		deadline = start.Add(r.cfg.Timeouts.Total)
	}
	var resp *fasthttp.Response
	if stream {
		resp = fasthttp.AcquireResponse()
	} else {
		resp = &ctx.Response
	}
	ep, err := g.exchange(r, tbl, key, req, resp, stream, deadline, !req.IsBodyStream())
	if clientClose {
		req.Header.SetConnectionClose()
	}
	if err != nil {
		if stream {
			fasthttp.ReleaseResponse(resp)
		}
		g.failH1(ctx, st, r, err, start)
		x.setVariantHeader(&ctx.Response)
		x.finish(ctx.Response.StatusCode(), nil, nil, time.Since(start), true)
		return false
	}
	if !stream {
		settle(ep, resp.StatusCode())
		ctx.Response.Header.ResetConnectionClose()
		if clientClose {
			ctx.SetConnectionClose()
		}
		ctx.Response.Header.SetCanonical(keyRequestID, req.Header.PeekCanonical(keyRequestID))
		x.setVariantHeader(&ctx.Response)
		d := time.Since(start)
		r.stats.observe(ctx.Response.StatusCode(), d)
		x.finish(ctx.Response.StatusCode(), &ctx.Response, nil, d, false)
		return false
	}
	// Streamed: status and headers now, the body as it arrives.
	resp.Header.CopyTo(&ctx.Response.Header)
	ctx.Response.Header.ResetConnectionClose()
	if clientClose {
		ctx.SetConnectionClose()
	}
	ctx.Response.Header.SetBytesV(hdrRequestID, req.Header.Peek(hdrRequestID))
	x.setVariantHeader(&ctx.Response)
	rl := relayPool.Get().(*relay)
	*rl = relay{g: g, r: r, ep: ep, resp: resp, body: resp.BodyStream(), start: start, conn: ctx.Conn(), status: resp.StatusCode(), x: x, accessLog: st.cfg.Telemetry.AccessLog}
	if rl.accessLog {
		rl.rid = append([]byte(nil), req.Header.Peek(hdrRequestID)...)
	}
	size := resp.Header.ContentLength()
	if size < 0 || bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream")) {
		size = -1
	}
	ctx.Response.SetBodyStream(rl, size)
	return true
}

// appendForwardedFor adds the client's address to X-Forwarded-For without
// allocating (the header is built in a stack buffer unless an incoming
// list is long). The address text is formatted once per connection.
func appendForwardedFor(ctx *fasthttp.RequestCtx) {
	var ipb [64]byte
	var ip []byte
	if lc, ok := ctx.Conn().(*lazyConn); ok {
		ip = lc.clientIP()
	} else {
		ip = appendClientIP(ipb[:0], ctx.RemoteIP())
	}
	if len(ip) == 0 {
		return
	}
	var buf [128]byte
	b := buf[:0]
	if prior := ctx.Request.Header.PeekCanonical(keyForwardedFor); len(prior) > 0 {
		b = append(append(b, prior...), ", "...)
	}
	b = append(b, ip...)
	ctx.Request.Header.SetCanonical(keyForwardedFor, b)
}

// appendClientIP appends ip's text, nothing for no or an unspecified
// address.
func appendClientIP(b []byte, ip net.IP) []byte {
	if len(ip) == 0 || ip.IsUnspecified() {
		return b
	}
	if v4 := ip.To4(); v4 != nil {
		for i, o := range v4 {
			if i > 0 {
				b = append(b, '.')
			}
			b = strconv.AppendUint(b, uint64(o), 10)
		}
	} else if a, ok := netip.AddrFromSlice(ip); ok {
		b = a.AppendTo(b)
	}
	return b
}

const hdrForwardedFor = "X-Forwarded-For"

// hopHeaders are hop-by-hop request headers not forwarded (RFC 9110 §7.6.1).
// Connection and Transfer-Encoding are handled by fasthttp itself.
// Expect is dropped too: the gateway already read the body.
var hopHeaders = [...]string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect"}

// hasHopHeader reports whether raw request headers may hold one of
// hopHeaders: a line that starts with its name (any case) followed by a
// colon or blank. Deleting them costs a header scan each, so the common
// request without any skips that.
func hasHopHeader(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) == 0 {
			continue
		}
		switch line[0] | 0x20 {
		case 'k', 'p', 't', 'u', 'e':
			for _, h := range hopHeaders {
				if len(line) > len(h) && bytes.EqualFold(line[:len(h)], []byte(h)) {
					if c := line[len(h)]; c == ':' || c == ' ' || c == '\t' {
						return true
					}
				}
			}
		}
	}
	return false
}

// exchange sends req to a node of r and reads the response status and
// headers (and the body unless stream). A failure before any response byte
// came back (refused, reset, closed, a draining 503, a queue-full 429) is
// retried on a
// different node while the route's attempts and retry budget allow; a
// timeout or anything after the first response byte is not. On success the
// node's endpoint is acquired: the caller releases it when the body is
// done.
//
// A request whose body is streamed (replayable false) is retried only when
// its connection could not be opened, since nothing of it was sent.
func (g *Gateway) exchange(r *route, tbl *balancer.Table, key uint64, req *fasthttp.Request, resp *fasthttp.Response, stream bool, deadline time.Time, replayable bool) (*balancer.Endpoint, error) {
	r.depositRetry()
	// avoid is allocated only when a request skips a node: the common
	// path stays allocation-free.
	var avoid []*balancer.Endpoint
	retries := 0
	saturated := false
	var lastErr error
	for {
		ep, err := tbl.PickAvoiding(key, avoid)
		if err != nil {
			switch {
			case lastErr != nil:
				return nil, lastErr
			case saturated:
				return nil, ErrRouteSaturated
			}
			return nil, err
		}
		if ep.InFlight() >= int64(r.lim.MaxPerNode) {
			saturated = true
			if len(avoid) == maxAvoid {
				return nil, ErrRouteSaturated
			}
			avoid = append(avoid, ep)
			continue
		}
		up := ep.Value().(*upstream)
		ep.Acquire()
		resp.StreamBody = stream
		err = up.hc.DoDeadline(req, resp, deadline)
		if err == nil {
			code := resp.StatusCode()
			up.report(code < 500)
			refused := code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusTooManyRequests
			if !refused || !replayable || len(avoid) == maxAvoid || retries >= r.attempts || !r.takeRetry() {
				return ep, nil
			}
			// The node refused the request before doing any work: 503
			// (draining) or 429 (its queue is full, as vLLM and the
			// simulated engines answer under a burst). No body byte has
			// reached the client, so try another node, like nginx's
			// proxy_next_upstream http_503 http_429. Only a 503 takes the
			// node out: a full queue is a moment, a drain is not.
			if code == fasthttp.StatusServiceUnavailable {
				up.markDraining()
			}
			if stream {
				_ = resp.CloseBodyStream()
			}
			ep.Release()
			lastErr = &UpstreamError{Node: up.id, Status: code, Retryable: true}
		} else {
			ep.Release()
			noConn := errors.Is(err, fasthttp.ErrNoFreeConns)
			retryable := !isTimeout(err) && !errors.Is(err, fasthttp.ErrBodyTooLarge)
			if !replayable {
				retryable = noConnection(err)
			}
			if !noConn {
				up.report(false)
			}
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				// The node's answer is over Limits.MaxResponseBytes: a bad
				// gateway, not the client's request being too large.
				err = errResponseTooLarge
			}
			ue := &UpstreamError{Node: up.id, Err: err, Retryable: retryable}
			if !retryable || len(avoid) == maxAvoid || retries >= r.attempts || !r.takeRetry() {
				return nil, ue
			}
			lastErr = ue
		}
		retries++
		r.stats.retries.Add(1)
		avoid = append(avoid, ep)
	}
}

var errResponseTooLarge = fmt.Errorf("%w: response over limits.max_response_bytes", ErrUpstream)

// accessLog logs one finished request (Telemetry.AccessLog; never called
// when it is off).
func (g *Gateway) accessLog(method, path []byte, status int, d time.Duration, rid []byte, streamed bool) {
	g.log.Info("gateway: request", "method", string(method), "path", string(path), "status", status,
		"duration", d, "request_id", string(rid), "streamed", streamed)
}

// noConnection reports failures that happen before a connection to the
// node exists: nothing of the request was sent.
func noConnection(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns)
}

// failH1 answers err in OpenAI's error shape.
func (g *Gateway) failH1(ctx *fasthttp.RequestCtx, st *state, r *route, err error, start time.Time) {
	c := classify(err)
	ctx.Response.Reset()
	ctx.SetStatusCode(c.status)
	ctx.SetContentType(ctJSON)
	if c.retry {
		ctx.Response.Header.SetBytesV(hdrRetryAfter, st.retryAfter)
	}
	rid := ctx.Request.Header.Peek(hdrRequestID)
	ctx.Response.Header.SetBytesV(hdrRequestID, rid)
	ctx.SetBody(errorBody(err, c, rid))
	if r != nil {
		r.stats.observe(c.status, time.Since(start))
	} else {
		g.unrouted.observe(c.status, time.Since(start))
	}
	if st.cfg.Telemetry.AccessLog {
		g.log.Info("gateway: request failed", "status", c.status, "err", err, "request_id", string(rid))
	}
}

// serveH1Error answers requests fasthttp could not parse.
func (g *Gateway) serveH1Error(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne *net.OpError
	switch {
	case errors.As(err, &small):
		err = ErrHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		err = ErrTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		ctx.Error(`{"error":{"message":"request read timeout","type":"invalid_request_error","code":"request_timeout"}}`, fasthttp.StatusRequestTimeout)
		return
	default:
		err = errors.Join(ErrBadRequest, err)
	}
	c := classify(err)
	ctx.Response.Reset()
	ctx.SetStatusCode(c.status)
	ctx.SetContentType(ctJSON)
	ctx.SetBody(errorBody(err, c, nil))
}

// relay streams an upstream body to the client: fasthttp writes each Read
// as one chunk and flushes it. CloseWithError (called by fasthttp when the
// response is done or abandoned) releases the node, the pooled response and the
// in-flight count.
type relay struct {
	g      *Gateway
	r      *route
	ep     *balancer.Endpoint
	resp   *fasthttp.Response
	body   io.Reader
	conn   net.Conn
	start  time.Time
	status int
	failed bool
	x      extras
	// accessLog is Telemetry.AccessLog of the request's state; rid is
	// copied only then.
	accessLog bool
	rid       []byte
}

var relayPool = sync.Pool{New: func() any { return new(relay) }}

func (rl *relay) Read(p []byte) (int, error) {
	if rl.body == nil {
		return 0, io.EOF
	}
	n, err := rl.body.Read(p)
	if n > 0 && rl.x.shadow != nil {
		_, _ = rl.x.shadow.Write(p[:n]) // tee for the shadow comparison
	}
	if err != nil && err != io.EOF {
		// The node failed mid-stream: nothing can be retried; abort the
		// client's response so it sees a truncated body, not a clean end.
		rl.failed = true
		rl.ep.Value().(*upstream).report(false)
		_ = rl.conn.Close()
	}
	return n, err
}

// settle ends a request on its endpoint: a node that answered below 400
// completed it (Endpoint.Complete, which the default weigher turns into the
// node's observed speed); anything else (an error status, a client gone,
// a broken stream) only releases the in-flight count.
func settle(ep *balancer.Endpoint, status int) {
	if status >= 100 && status < 400 {
		ep.Complete()
		return
	}
	ep.Release()
}

// CloseWithError is called by fasthttp once the response is written (err
// nil) or abandoned (err is the write error: the client went away, 499).
func (rl *relay) CloseWithError(werr error) error {
	_ = rl.resp.CloseBodyStream()
	status := rl.status
	switch {
	case rl.failed:
		status = fasthttp.StatusBadGateway
	case werr != nil:
		status = statusClientClosedConn
	}
	d := time.Since(rl.start)
	rl.r.stats.observe(status, d)
	rl.x.finish(status, nil, rl.resp.Header.ContentType(), d, rl.failed)
	endSpan(rl.x.span, status)
	if rl.accessLog {
		rl.g.accessLog(nil, nil, status, d, rl.rid, true)
	}
	fasthttp.ReleaseResponse(rl.resp)
	settle(rl.ep, status)
	g := rl.g
	*rl = relay{}
	relayPool.Put(rl)
	g.inflight.Add(-1)
	return nil
}

func utf8Valid(b []byte) bool { return utf8.Valid(b) }
