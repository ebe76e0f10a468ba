package forward

import (
	"bytes"
	"errors"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
	"github.com/switchyard-dev/switchyard/internal/h2key"
)

// maxAvoid bounds the nodes one request skips (failed or full).
const maxAvoid = 8

// send picks a node of rt and exchanges the request with it, retrying on
// another node for failures before any response byte — refused, reset,
// closed, a draining 503, a queue-full 429 — while the route's attempts
// and retry budget allow; never after the first response byte and never
// on timeouts. The table is the one snapshot of the request. On success
// x holds the node's endpoint (acquired: Finish settles it) and answer.
func (c *Core) send(x *Exchange, rt *route.Route) error {
	rt.DepositRetry()
	tbl := rt.Table()
	if tbl == nil {
		return &balancer.NoEndpointError{}
	}
	var key uint64
	if h := rt.HashKey(); h != nil {
		key = xxhash.Sum64(x.Req.Header(h))
	}
	if t := rt.Config().Timeouts.Total; t > 0 {
		x.deadline = x.start.Add(t)
	}
	if ctx := x.Req.Ctx; ctx != nil {
		if dl, ok := ctx.Deadline(); ok && (x.deadline.IsZero() || dl.Before(x.deadline)) {
			x.deadline = dl
		}
	}
	grpc := x.Req.Proto == GRPC
	if !grpc {
		x.prepareHTTP()
		defer x.restoreHTTP()
	}
	// avoid is allocated only when a request skips a node: the common
	// path stays allocation-free.
	var avoid []*balancer.Endpoint
	retries := 0
	saturated := false
	var lastErr error
	aff := rt.Affinity()
	x.affReq.Key = key
	for {
		var ep *balancer.Endpoint
		var err error
		if aff != nil {
			var ch balancer.Choice
			ch, err = aff.Pick(tbl, &x.affReq, avoid)
			ep = ch.Endpoint
		} else {
			ep, err = tbl.PickAvoiding(key, avoid)
		}
		if err != nil {
			switch {
			case lastErr != nil:
				return lastErr
			case saturated:
				return ErrRouteSaturated
			}
			return err
		}
		if ep.InFlight() >= rt.MaxPerNode() {
			saturated = true
			if len(avoid) == maxAvoid {
				return ErrRouteSaturated
			}
			avoid = append(avoid, ep)
			continue
		}
		n := ep.Value().(*upstream.Node)
		ep.Acquire()
		var status int
		var replayable bool
		sent := time.Now()
		if grpc {
			status, replayable, err = x.attemptGRPC(n)
		} else {
			status, replayable, err = x.attemptHTTP(n)
		}
		x.firstByte = n.ObserveFirstByte(sent, status, err)
		more := len(avoid) < maxAvoid && retries < rt.Attempts()
		if err == nil {
			// A node that refuses with a Retry-After (a 503 while it
			// drains or starts, a 429) is telling, not failing: it does not
			// count against its breaker.
			n.Report(status < 500 || status == fasthttp.StatusServiceUnavailable && len(x.nodeRetryAfter()) > 0)
			refused := status == fasthttp.StatusServiceUnavailable || status == fasthttp.StatusTooManyRequests
			if status == fasthttp.StatusTooManyRequests {
				x.restBusy(tbl, ep, n)
			}
			if !refused || !replayable || !more || !rt.TakeRetry() {
				x.ep, x.node, x.status = ep, n, status
				x.startBody(rt)
				return nil
			}
			// The node refused the request before doing any work: 503
			// (draining) or 429 (its queue is full, as vLLM and the
			// simulated engines answer under a burst). No body byte has
			// reached the client, so try another node, like nginx's
			// proxy_next_upstream http_503 http_429. Only a 503 takes the
			// node out: a full queue is a moment, a drain is not.
			if status == fasthttp.StatusServiceUnavailable {
				n.MarkDraining()
			}
			x.discardAttempt()
			ep.Release()
			lastErr = &UpstreamError{Node: n.ID(), Status: status, Retryable: true, RetryAfter: string(x.nodeRetryAfter())}
		} else {
			ep.Release()
			if !errors.Is(err, upstream.ErrNoFreeConns) && !errors.Is(err, upstream.ErrAborted) {
				n.Report(false)
			}
			ue := &UpstreamError{Node: n.ID(), Err: err, Retryable: replayable}
			if !replayable || !more || !rt.TakeRetry() {
				return ue
			}
			lastErr = ue
		}
		retries++
		x.retries++
		rt.Stats().Retry()
		avoid = append(avoid, ep)
	}
}

// attemptHTTP sends the request to an HTTP node. replayable says the
// request may go to another node: nothing of it reached this one, or its
// body is buffered and the failure was not a timeout.
func (x *Exchange) attemptHTTP(n *upstream.Node) (status int, replayable bool, err error) {
	resp := x.clientRsp
	if x.stream || resp == nil {
		resp = &x.own
	}
	x.resp = resp
	resp.StreamBody = x.stream
	buffered := true // an HTTP/2 request's body is read whole first
	if req := x.Req.h1; req != nil {
		err = n.Do(&x.call, req, resp, x.deadline)
		buffered = !req.IsBodyStream()
	} else {
		err = n.DoWritten(&x.call, &x.written, resp, x.deadline)
	}
	if err == nil {
		return resp.StatusCode(), buffered, nil
	}
	if buffered {
		replayable = !isTimeout(err) && !errors.Is(err, upstream.ErrResponseTooLarge) && !errors.Is(err, upstream.ErrAborted)
	} else {
		replayable = noConnection(err)
	}
	return 0, replayable, err
}

// restBusy takes a node that refused with 429 and a Retry-After out of
// picks for that long, while another node of the table can take
// requests: when every node is busy, their 429s go on to clients.
func (x *Exchange) restBusy(tbl *balancer.Table, ep *balancer.Endpoint, n *upstream.Node) {
	ra := x.nodeRetryAfter()
	if len(ra) == 0 {
		return
	}
	secs, err := strconv.Atoi(string(ra))
	if err != nil || secs <= 0 {
		return // an HTTP date or junk: no rest
	}
	for i := 0; i < tbl.Ready(); i++ { // the ready nodes come first
		if e := tbl.Endpoint(i); e != ep && e.Exclusions() == 0 {
			n.MarkBusy(time.Duration(secs) * time.Second)
			return
		}
	}
}

// nodeRetryAfter is the Retry-After of the node's answer, if any.
func (x *Exchange) nodeRetryAfter() []byte {
	if x.hresp != nil {
		return bytesOf(h2key.Value(x.hresp.Header, "retry-after"))
	}
	if x.resp == nil {
		return nil
	}
	return x.resp.Header.PeekBytes(keyRetryAfter)
}

var keyRetryAfter = []byte("Retry-After")

// discardAttempt drops a refused attempt's answer before a retry.
func (x *Exchange) discardAttempt() {
	if x.Req.Proto == GRPC {
		x.g.discard()
		return
	}
	if x.resp != nil && x.resp.IsBodyStream() {
		x.call.Done(x.resp, false)
	}
}

// startBody readies the relay of a streamed answer.
func (x *Exchange) startBody(rt *route.Route) {
	switch {
	case x.Req.Proto == GRPC:
		x.g.startBody(x, rt)
	case x.resp.IsBodyStream():
		x.body = x.call.Body() // read from the connection's buffer (Next)
		// OpenAI completions stream as events that end with
		// "data: [DONE]": without it, a stream the node closed is cut.
		x.needDone = bytes.HasPrefix(x.resp.Header.ContentType(), []byte("text/event-stream")) &&
			(string(x.Req.Path) == "/v1/chat/completions" || string(x.Req.Path) == "/v1/completions")
		if x.needDone && x.status == fasthttp.StatusOK {
			x.startSSE()
		}
	case x.status == fasthttp.StatusOK:
		x.readUsage(x.resp.Body())
	}
}

// noConnection reports failures that happen before a connection to the
// node exists: nothing of the request was sent.
func noConnection(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, upstream.ErrNoFreeConns)
}

// prepareHTTP edits the request for the node: hop-by-hop headers go, the
// client's address joins X-Forwarded-For, a TLS-terminated request goes
// on as plain http. An HTTP/2 request is written out into x.written
// (writeH1Head).
func (x *Exchange) prepareHTTP() {
	r := &x.Req
	if req := r.h1; req != nil {
		x.clientClose = req.Header.ConnectionClose()
		req.Header.ResetConnectionClose()
		if conn := req.Header.PeekBytes(keyConnection); len(conn) > 0 {
			// fasthttp keeps a Connection header other than "close":
			// it and the headers it names stay here.
			ConnectionTokens(conn, func(name []byte) { req.Header.DelBytes(name) })
			req.Header.DelBytes(keyConnection)
		}
		if hasStrippedHeader(req.Header.RawHeaders()) {
			for _, h := range h1Stripped {
				req.Header.Del(h)
			}
		}
		// The request line and Host the node gets are the client's
		// Host and the normalised path: an absolute-form target
		// ("POST http://other/...") does not pick the Host, and the path
		// is the one routing and the allowlist checked.
		req.UseHostHeader = true
		uri := req.URI()
		uri.DisablePathNormalizing = true
		if x.pathChanged {
			uri.SetPathBytes(r.Path)
		}
		if r.tls {
			uri.SetScheme("http")
		}
		appendForwardedFor(&req.Header, req.Header.PeekCanonical(keyForwardedFor), r.ipText)
		appendVia(&req.Header, req.Header.PeekCanonical(keyVia), x.core.via)
		if x.tenant != nil { // the key stays here; the tenant goes on
			req.Header.DelBytes(keyAuthorization)
			req.Header.DelBytes(keyAPIKey)
			req.Header.SetCanonical(keyTenant, bytesOf(x.tenant.Name()))
		}
		return
	}
	x.headBuf = x.writeH1Head(x.headBuf[:0])
	x.written = upstream.Written{Head: x.headBuf, Body: r.Body, HEAD: string(r.Method) == fasthttp.MethodHead}
}

// maxKeptHead is the largest written head buffer an Exchange keeps.
const maxKeptHead = 16 << 10

// writeH1Head appends the HTTP/1.1 request head an HTTP node gets for an
// HTTP/2 request: the request line with the normalised target; Host, the
// one routing used (a host field is dropped); the client's fields under
// their canonical names, but the hop-by-hop ones and Content-Length;
// cookie crumbs joined in one line (RFC 9113 §8.2.3); X-Forwarded-For and
// Via with this hop added; the gateway's request ID and tenant; and the
// body's Content-Length. The fields were checked when decoded (lower-case
// tokens; values without CR, LF or NUL) and the method is a token
// (h2server); target bytes a request line cannot hold are
// percent-encoded.
func (x *Exchange) writeH1Head(b []byte) []byte {
	r := &x.Req
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = appendTarget(b, x.targetURI())
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	var prior, priorVia, cookies []byte
	for _, f := range r.fields {
		switch f.Name {
		case "x-forwarded-for":
			prior = appendJoined(prior, ", ", f.Value)
			continue
		case "via":
			priorVia = appendJoined(priorVia, ", ", f.Value)
			continue
		case "cookie": // one line for HTTP/1.1 (RFC 9113 §8.2.3)
			cookies = appendJoined(cookies, "; ", f.Value)
			continue
		case "host", "content-length", "x-switchyard-tenant": // the gateway's own; only it names a tenant
			continue
		case "authorization", "x-api-key":
			if x.tenant != nil {
				continue
			}
		case "x-request-id":
			if x.idGenerated {
				continue
			}
		}
		if !hopHeader(bytesOf(f.Name)) {
			b = appendField(b, f.Name, f.Value)
		}
	}
	if len(cookies) > 0 {
		b = appendCanonicalField(b, "Cookie", cookies)
	}
	if x.idGenerated {
		b = appendCanonicalField(b, "X-Request-Id", x.id)
	}
	if len(prior) > 0 || len(r.ipText) > 0 {
		b = appendListField(b, "X-Forwarded-For", prior, r.ipText)
	}
	b = appendListField(b, "Via", priorVia, x.core.via)
	if x.tenant != nil {
		b = appendCanonicalField(b, "X-Switchyard-Tenant", bytesOf(x.tenant.Name()))
	}
	if len(r.Body) > 0 || bodyMethod(r.Method) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.Body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// bodyMethod: a method whose request has content, so that an empty body
// still gets a Content-Length: 0 (RFC 9110 §8.6).
func bodyMethod(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodPatch:
		return true
	}
	return false
}

// appendField appends a header line for an HTTP/2 field: its name (a
// lower-case token) in canonical form, as HTTP/1.1 clients send it.
func appendField(b []byte, name, value string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendListField appends a list field: the values before, then this
// hop's (either may be empty).
func appendListField(b []byte, name string, prior, hop []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, prior...)
	if len(prior) > 0 && len(hop) > 0 {
		b = append(b, ", "...)
	}
	b = append(b, hop...)
	return append(b, "\r\n"...)
}

func appendCanonicalField(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendTarget appends a request target, percent-encoding the bytes a
// request line cannot hold (controls, space, DEL and non-ASCII).
func appendTarget(b, target []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// targetURI is the request target the node gets: the normalised path and
// the client's query.
func (x *Exchange) targetURI() []byte {
	r := &x.Req
	if !x.pathChanged {
		return r.URI
	}
	b := append(x.uriBuf[:0], r.Path...)
	if i := bytes.IndexByte(r.URI, '?'); i >= 0 {
		b = append(b, r.URI[i:]...)
	}
	x.uriBuf = b
	return b
}

// restoreHTTP undoes what the HTTP/1.1 server must still see: the
// client's Connection: close.
func (x *Exchange) restoreHTTP() {
	if x.Req.h1 != nil && x.clientClose {
		x.Req.h1.Header.SetConnectionClose()
	}
}

// ClientClose reports whether the HTTP/1.1 client asked to close its
// connection after this answer.
func (x *Exchange) ClientClose() bool { return x.clientClose }

// appendForwardedFor sets X-Forwarded-For to prior, then the client's
// address, without allocating (a stack buffer unless the incoming list is
// long).
func appendForwardedFor(h *fasthttp.RequestHeader, prior, ip []byte) {
	if len(ip) == 0 {
		return
	}
	var buf [128]byte
	b := buf[:0]
	if len(prior) > 0 {
		b = append(append(b, prior...), ", "...)
	}
	b = append(b, ip...)
	h.SetCanonical(keyForwardedFor, b)
}

var keyConnection = []byte("Connection")

// h1Stripped are the headers an HTTP/1.1 request loses on its way to a
// node besides Connection and those it names: the hop-by-hop ones that
// fasthttp does not handle itself (it handles Connection and
// Transfer-Encoding), and X-Switchyard-Tenant, which only the gateway
// sets (after checking an API key), so that a node may trust it.
var h1Stripped = [...]string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect", "X-Switchyard-Tenant"}

// appendVia adds this gateway to Via (RFC 9110 §7.6.3), without
// allocating; it is how a loop back into the gateway is recognised.
func appendVia(h *fasthttp.RequestHeader, prior, via []byte) {
	if len(prior) == 0 {
		h.SetCanonical(keyVia, via)
		return
	}
	var buf [256]byte
	b := append(append(append(buf[:0], prior...), ", "...), via...)
	h.SetCanonical(keyVia, b)
}

// hasStrippedHeader reports whether raw request headers may hold one of
// h1Stripped: a line that starts with its name (any case)
// followed by a colon or blank. Deleting them costs a header scan each, so
// the common request without any skips that.
func hasStrippedHeader(raw []byte) bool {
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
		case 'k', 'p', 't', 'u', 'e', 'x':
			for _, h := range h1Stripped {
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

func utf8Valid(b []byte) bool { return utf8.Valid(b) }

// appendJoined adds v to a header value whose entries are joined by sep
// (", " for a list, "; " for cookie crumbs); a single value is a view of
// the field's string, not a copy.
func appendJoined(line []byte, sep, v string) []byte {
	if line == nil {
		return bytesOf(v)
	}
	out := make([]byte, 0, len(line)+len(sep)+len(v))
	return append(append(append(out, line...), sep...), v...)
}
