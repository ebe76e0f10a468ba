package frontend

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/deadline"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/internal/writebatch"
)

// serveHTTP1 translates an HTTP/1.1 request into the core's view, forwards
// it and writes the answer. It keeps nothing of ctx after it returns,
// except through a streamed response's body, which fasthttp closes
// (Exchange.CloseWithError) when the response is done.
func (s *Server) serveHTTP1(ctx *fasthttp.RequestCtx) {
	x := s.core.Acquire()
	defer func() {
		if p := recover(); p != nil {
			s.recoverH1(ctx, x, p)
		}
	}()
	if testHook != nil {
		testHook(ctx.Request.Header.Peek("X-Test-Panic"))
	}
	r := &x.Req
	r.Proto = forward.HTTP1
	r.Start = ctx.Time() // read by fasthttp just before calling the handler
	// The raw path: the core normalises it itself (fasthttp's Path()
	// decodes escaped slashes, which the allowlist must refuse instead).
	r.Method, r.Path, r.URI, r.Host = ctx.Method(), ctx.URI().PathOriginal(), ctx.RequestURI(), ctx.Host()
	r.SetHTTP1(&ctx.Request, ctx.IsTLS())
	cc, _ := ctx.Conn().(*clientConn)
	if cc != nil {
		r.SetClientAddr(cc.addr, cc.ipText)
		x.WatchClient(cc) // a client that leaves cancels its node's work
		cc.HoldNextWrite(false)
	} else if ap, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		r.SetClientAddr(ap, []byte(ap.String()))
	}
	switch {
	case framingConflict(ctx.Request.Header.RawHeaders()):
		// Content-Length and Transfer-Encoding together: a request
		// smuggling attempt (RFC 9112 §6.3). Refuse it and close the
		// connection so nothing after it on the wire is read as a request.
		r.Err = errFramingConflict
	case s.streamBodies && ctx.Request.IsBodyStream():
		r.Err = s.prepareBody(ctx, x)
	case !x.ReserveBody(len(ctx.Request.Body())):
		r.Err = forward.ErrBodyBudget
	}
	if ctx.Request.IsBodyStream() {
		r.BodyStream = ctx.RequestBodyStream()
	} else {
		r.Body = ctx.Request.Body()
	}
	x.SetClientResponse(&ctx.Response)
	s.core.Forward(x)
	if r.Err != nil || x.Status() == fasthttp.StatusRequestURITooLong || s.core.Draining() {
		// A malformed request leaves the connection unusable; a draining
		// gateway asks clients to go elsewhere.
		ctx.SetConnectionClose()
	}
	if r.Err != nil || x.Local() && ctx.Request.IsBodyStream() {
		// A body refused or answered unread: the client may still be
		// sending it, and closing under it would lose the answer.
		ctx.SetConnectionClose()
		lingerOnClose(ctx.Conn())
	}
	resp := &ctx.Response
	switch {
	case x.Local():
		// Reset clears the Connection: close set above too: keep it, or
		// the rest of a refused body would be read as the next request.
		closeConn := resp.ConnectionClose()
		resp.Reset()
		if closeConn {
			resp.SetConnectionClose()
		}
		resp.SetStatusCode(x.Status())
		resp.Header.SetContentType(x.LocalContentType())
		if ra := x.RetryAfter(); ra != nil {
			resp.Header.SetCanonical(keyRetryAfter, ra)
		}
		setGatewayHeaders(&resp.Header, x)
		resp.SetBody(x.LocalBody())
		x.Finish(nil)
		x = nil
		holdAnswer(cc, resp)
	case !x.Streamed():
		// The node's answer is in ctx.Response already.
		s.keepClientConnection(ctx, x)
		stripHopHeaders(&resp.Header)
		setGatewayHeaders(&resp.Header, x)
		x.Finish(nil)
		x = nil
		holdAnswer(cc, resp)
	default:
		// Streamed: status and headers now, the body as it arrives.
		up := x.Response()
		up.Header.CopyTo(&resp.Header)
		s.keepClientConnection(ctx, x)
		stripHopHeaders(&resp.Header)
		setGatewayHeaders(&resp.Header, x)
		size := up.Header.ContentLength()
		if size < 0 || bytes.HasPrefix(up.Header.ContentType(), []byte("text/event-stream")) {
			size = -1
		}
		if cc, ok := ctx.Conn().(*clientConn); ok && size < 0 {
			s.hijackStream(ctx, cc, x) // relayed once the handler returned (stream.go)
			x = nil
			return
		}
		// A node that breaks the stream must not look like a clean end:
		// the client connection is closed without the terminating chunk.
		x.AbortClientOnFailure(ctx.Conn())
		resp.SetBodyStream(x, size) // fasthttp ends it: CloseWithError
		x = nil
	}
}

// holdAnswer has the client connection hold a complete answer that keeps
// the connection open until fasthttp reads the next request, which then
// writes it and waits for the request without a read that fails with
// EAGAIN (deadline.Client.HoldNextWrite).
func holdAnswer(cc *clientConn, resp *fasthttp.Response) {
	if cc != nil && !resp.ConnectionClose() {
		cc.HoldNextWrite(true)
	}
}

// testHook, when a test sets it, runs at the start of every request (to
// make a handler panic on purpose).
var testHook func(arg []byte)

// recoverH1 answers a panic in the handler with 500 instead of letting it
// kill the process (fasthttp does not recover handlers), logs it with the
// stack, and ends the exchange if it can.
// x is nil once the exchange was finished (or handed to fasthttp).
func (s *Server) recoverH1(ctx *fasthttp.RequestCtx, x *forward.Exchange, p any) {
	s.log.Error("gateway: panic serving a request", "panic", p, "stack", string(debug.Stack()))
	ctx.Response.Reset()
	ctx.SetStatusCode(fasthttp.StatusInternalServerError)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"error":{"message":"internal error","type":"server_error","code":"internal_error"}}`)
	ctx.SetConnectionClose()
	if x != nil {
		x.FinishAfterPanic()
	}
}

// stripHopHeaders drops the hop-by-hop headers of a node's answer (RFC
// 9110 §7.6.1): they are about the node's connection to the gateway.
// fasthttp writes Connection and Transfer-Encoding itself.
func stripHopHeaders(h *fasthttp.ResponseHeader) {
	if conn := h.PeekBytes(keyConnection); len(conn) > 0 && !h.ConnectionClose() {
		// The node's Connection header (other than "close", which
		// fasthttp holds as a flag) and the headers it names are about
		// the node's connection.
		forward.ConnectionTokens(conn, func(name []byte) { h.DelBytes(name) })
		h.DelBytes(keyConnection)
	}
	found := false
	for k := range h.All() {
		if hopResponseHeader(k) {
			found = true
			break
		}
	}
	if found {
		for _, k := range hopNames {
			if k != "Connection" && k != "Transfer-Encoding" {
				h.Del(k)
			}
		}
	}
}

// keepClientConnection: the node's Connection: close is about the
// gateway's connection to it, not the client's; the client's own wish
// and a draining gateway close the client connection.
func (s *Server) keepClientConnection(ctx *fasthttp.RequestCtx, x *forward.Exchange) {
	ctx.Response.Header.ResetConnectionClose()
	if x.ClientClose() || s.core.Draining() {
		ctx.SetConnectionClose()
	}
}

var (
	keyConnection = []byte("Connection")
	keyRetryAfter = []byte("Retry-After")
	keyRequestID  = []byte("X-Request-Id")
)

// setGatewayHeaders adds what the gateway says on every answer: the
// request id and the split variant.
func setGatewayHeaders(h *fasthttp.ResponseHeader, x *forward.Exchange) {
	h.SetCanonical(keyRequestID, x.RequestID())
	if k, v := x.Variant(); k != nil {
		h.SetBytesKV(k, v)
	}
	if k, v := x.Fallback(); k != nil {
		h.SetBytesKV(k, v)
	}
}

var errFramingConflict = fmt.Errorf("%w: both Content-Length and Transfer-Encoding", forward.ErrBadRequest)

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

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// prepareBody decides, for a request whose body fasthttp streams
// (Limits.StreamBodyOver), whether the body is read now (small, chunked,
// or needed for routing) or streamed to the node, and enforces
// Limits.MaxBodyBytes.
func (s *Server) prepareBody(ctx *fasthttp.RequestCtx, x *forward.Exchange) error {
	lim := &s.lim
	cl := ctx.Request.Header.ContentLength()
	switch {
	case cl > lim.MaxBodyBytes:
		return forward.ErrTooLarge
	case cl >= 0 && cl <= lim.StreamBodyOver:
		if !x.ReserveBody(cl) {
			return forward.ErrBodyBudget
		}
		ctx.Request.Body() // complete already: materialize
	case cl > lim.StreamBodyOver:
		if x.NeedsBody() && ctx.IsPost() && route.IsJSONRequest(ctx.Request.Header.ContentType(), nil) {
			if !x.ReserveBody(cl) {
				return forward.ErrBodyBudget
			}
			ctx.Request.Body() // routing reads it; bounded by Content-Length
		}
		// else: stream it to the node.
	default: // chunked: read with the limit
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		var body []byte
		rd := ctx.RequestBodyStream()
		for {
			n, err := rd.Read(*bp)
			if !x.ReserveBody(n) {
				return forward.ErrBodyBudget
			}
			body = append(body, (*bp)[:n]...)
			if len(body) > lim.MaxBodyBytes {
				return forward.ErrTooLarge
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return errors.Join(forward.ErrBadRequest, err)
			}
		}
		ctx.Request.SetBody(body)
	}
	return nil
}

// headerReceivedH1 runs once a request's headers are read, before any of
// its body. A request that declares a body over Limits.MaxBodyBytes is
// marked as expecting 100-continue, so that fasthttp reads none of its
// body and asks expectH1, which refuses it. Without the mark, a streamed
// body (Limits.StreamBodyOver) has up to 8 KiB read before the handler
// runs, and a client that sent less waited for the read timeout.
func (s *Server) headerReceivedH1(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() > s.lim.MaxBodyBytes {
		h.SetCanonical(keyExpect, value100Continue)
	}
	return fasthttp.RequestConfig{} // the server's own timeouts and limits
}

var (
	keyExpect        = []byte("Expect")
	value100Continue = []byte("100-continue")
)

// expectH1 answers a request that expects 100-continue, before any of its
// body is read: one that declares a body over Limits.MaxBodyBytes (the
// client's own Expect or headerReceivedH1's mark) gets 413 in the JSON
// error shape — the expectation is fine, the body is too large (RFC 9110
// §10.1.1 lets a final status answer it instead of 100) — and never a 100
// Continue. fasthttp then skips the handler and closes the connection,
// lingering (the client may be sending the body already). Any other gets
// 100 Continue and is served as usual.
//
// fasthttp's documentation says an ExpectHandler must not modify the
// response; v1.74.0 writes it as is after a refusal, with the status
// returned here (TestDeclaredOversizedBodyHTTP1 checks the body).
func (s *Server) expectH1(ctx *fasthttp.RequestCtx) int {
	if ctx.Request.Header.ContentLength() <= s.lim.MaxBodyBytes {
		return fasthttp.StatusContinue
	}
	status, body := forward.ErrorAnswer(forward.ErrTooLarge)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	lingerOnClose(ctx.Conn())
	return status
}

// serveH1Error answers requests fasthttp could not parse.
func (s *Server) serveH1Error(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne *net.OpError
	switch {
	case errors.As(err, &small):
		err = forward.ErrHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// Past the limit in a buffered chunked body: the client may
		// still be sending it, and closing under it would lose the
		// answer.
		err = forward.ErrTooLarge
		lingerOnClose(ctx.Conn())
	case errors.As(err, &ne) && ne.Timeout():
		ctx.Error(`{"error":{"message":"request read timeout","type":"invalid_request_error","code":"request_timeout"}}`, fasthttp.StatusRequestTimeout)
		return
	default:
		// Never the parser's message: it quotes the raw request, and that
		// carries Authorization.
		err = forward.ErrBadRequest
	}
	status, body := forward.ErrorAnswer(err)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// clientConn is a client connection served by fasthttp: lazy read
// deadlines, and the client's address, parsed and formatted once per
// connection (for X-Forwarded-For and sticky keys).
type clientConn struct {
	deadline.Client
	addr   netip.Addr
	ipText []byte
	raw    syscall.RawConn // the TCP socket under any wrapping, for Gone

	pre     []byte                // bytes read while the connection was hijacked, replayed first
	pending atomic.Pointer[relay] // a stream handed to fasthttp's hijack, not started yet
	closed  atomic.Bool           // Close was called
	peekBuf [1]byte               // Gone's (the watchdog's goroutine only)
	peekFn  func(fd uintptr)      // Gone's socket probe, bound once
	gone    bool                  // peekFn's answer
}

// Read replays what was read while the connection was hijacked, then
// reads the connection.
func (c *clientConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		// A held answer goes out before the next request is served.
		if err := c.Client.Flush(); err != nil {
			return 0, err
		}
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Client.Read(p)
}

// Close closes the connection; a stream handed to fasthttp's hijack that
// never started (fasthttp failed the connection first) is ended here.
func (c *clientConn) Close() error {
	c.closed.Store(true)
	if r := c.pending.Swap(nil); r != nil {
		r.abandon()
	}
	return c.Client.Close()
}

// rawConn finds the TCP socket under the sniffer's and TLS's wrappers.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		switch w := c.(type) {
		case *prefixConn:
			c = w.Conn
		case *plainConn:
			c = w.Conn
		case *countedConn:
			c = w.Conn
		case *tls.Conn:
			c = w.NetConn()
		case *writebatch.Conn:
			c = w.NetConn()
		case syscall.Conn:
			rc, err := w.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
}

func newClientConn(c net.Conn) *clientConn {
	cc := &clientConn{}
	cc.Conn = c
	cc.raw = rawConn(c)
	cc.peekFn = cc.peekSocket
	if _, plain := c.(*countedConn); plain {
		cc.EnableHold() // not under TLS or a replayed prefix
	}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ap := ta.AddrPort(); ap.Addr().IsValid() && !ap.Addr().IsUnspecified() {
			cc.addr = ap.Addr().Unmap()
			cc.ipText = cc.addr.AppendTo(nil)
		}
	}
	return cc
}
