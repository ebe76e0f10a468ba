package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/openai"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
	"github.com/switchyard-dev/switchyard/internal/h2client"
	"github.com/switchyard-dev/switchyard/internal/h2key"
)

// Exchange is one request's passage through the core, from Acquire to
// Finish: the request view the frontend fills, the route and node it went
// to, and the answer. It is pooled; nothing of it may be used after
// Finish. Not safe for concurrent use, except that a streamed body is
// read by the frontend's writer while Finish waits for it.
type Exchange struct {
	// Req is the request; the frontend fills it before Forward.
	Req Request

	core        *Core
	set         *route.Set
	route       *route.Route
	start       time.Time
	deadline    time.Time // the route's total timeout, zero for none
	id          []byte
	idBuf       [12 + 1 + 16]byte
	idGenerated bool
	idText      string // id as a string, once asked for (RequestIDString)
	counted     bool   // in the core's in-flight count
	stream      bool   // the answer is relayed as it arrives
	clientClose bool   // the HTTP/1.1 client sent Connection: close
	scratch     []byte
	pathBuf     []byte // the normalised path, when it differs
	uriBuf      []byte // the normalised request target for the node
	pathChanged bool

	model  []byte      // the model the request names (aliases the body, scratch or modelBuf)
	queue  *flow.Queue // the route queue whose slot the request holds
	class  flow.Class
	affReq balancer.AffinityRequest
	hashes [maxPoints]uint64
	ends   [maxPoints]uint32
	tenant *tenant.Tenant // the API key's tenant; nil without keys
	holds  bool           // the tenant's max_concurrent slot is taken

	// The answer.
	status        int
	local         []byte // a local answer's body (nil: the node's answer)
	localCT       string
	errClass      errorClass
	err           error
	retryAfter    bool
	retryAfterBuf []byte

	// The node's answer.
	ep        *balancer.Endpoint
	node      *upstream.Node
	call      upstream.Call
	clientRsp *fasthttp.Response // the HTTP/1.1 frontend's response, filled in place when buffered
	resp      *fasthttp.Response // the HTTP node's answer: clientRsp or own
	own       fasthttp.Response
	// A shadow copy's request (Sender): made on first use and then kept
	// with the pooled Exchange, so one that serves only HTTP/1.1 clients
	// (held for a whole stream) does not carry its 1.7 KB.
	copyReq *fasthttp.Request
	// An HTTP/2 request written out for an HTTP/1.1 node (writeH1Head),
	// its head in headBuf.
	written     upstream.Written
	headBuf     []byte
	hresp       *h2client.Response // the gRPC node's answer
	body        io.Reader          // the streamed body being relayed
	failed      bool               // the node broke the stream
	needDone    bool               // an OpenAI event stream: it must end with data: [DONE]
	sawDone     bool
	done        doneScanner
	abortClient io.Closer // closed when the node breaks the stream
	cancelled   bool      // the client went away while the stream was read
	complete    bool      // the streamed body reached its end
	g           grpcState

	w        watch // the watchdog's view
	reserved int64 // body bytes held against Limits.MaxBufferedBytes

	// The OpenAI side (openai.go).
	jsonBody    bool             // the body is a JSON object the scanner read
	wantsSSE    bool             // its "stream" is true
	endpoint    openai.Endpoint  // chat, completions, embeddings or other
	usageMode   openai.UsageMode // what happens to a stream's usage event
	sse         openai.Reader    // the relay of an OpenAI event stream
	sseOn       bool             // x.body is &x.sse
	usage       openai.Usage     // the answer's usage, when found
	finish      openai.FinishReasons
	ms          *telemetry.ModelStats // the request's route and model series
	times       telemetry.TokenTimes
	modelBuf    []byte    // the model, copied before the body is replaced
	detachBuf   []byte    // method, path and a client's request ID, copied by Detach
	bodyBufs    [2][]byte // rewritten bodies (a fallback rewrites again)
	bodyIdx     int
	retries     int                  // attempts on other nodes
	firstByte   time.Duration        // from sending to the node's answer head
	fellBack    bool                 // served by the route's fallback
	fallbackWhy route.FallbackReason // why, when fellBack
	ka          *keepAlive           // the stream's keep-alive pump; nil when off

	// Companions.
	split   *split.Splitter
	variant int
	shadow  *shadow.Handle
	span    trace.Span
}

// SetClientResponse lets a buffered answer from an HTTP node be read
// straight into the HTTP/1.1 frontend's response (no copy). Call it before
// Forward.
func (x *Exchange) SetClientResponse(resp *fasthttp.Response) { x.clientRsp = resp }

// Status is the answer's status (the node's, or the local answer's).
func (x *Exchange) Status() int { return x.status }

// Local reports whether the gateway answers itself (LocalBody): an error,
// or the list of models.
func (x *Exchange) Local() bool { return x.local != nil }

// LocalBody and LocalContentType are a local answer's body and type. For a
// gRPC call an error is a gRPC status instead (GRPCStatus).
func (x *Exchange) LocalBody() []byte { return x.local }

// LocalContentType is the local answer's content type.
func (x *Exchange) LocalContentType() string { return x.localCT }

// GRPCStatus is a local error's gRPC status code and message.
func (x *Exchange) GRPCStatus() (code uint32, message string) {
	return x.errClass.grpc, clientMessage(x.err)
}

// RetryAfter is the Retry-After value to send, nil for none.
func (x *Exchange) RetryAfter() []byte {
	if !x.retryAfter {
		return nil
	}
	var ue *UpstreamError
	if errors.As(x.err, &ue) && ue.RetryAfter != "" {
		return bytesOf(ue.RetryAfter) // the node's own, passed on
	}
	if len(x.retryAfterBuf) > 0 {
		return x.retryAfterBuf // the tenant's bucket says when
	}
	return x.set.RetryAfter()
}

// RequestID is the request's X-Request-Id (the client's or generated).
func (x *Exchange) RequestID() []byte { return x.id }

// RequestIDString is RequestID as a string, made once per exchange.
func (x *Exchange) RequestIDString() string {
	if x.idText == "" {
		x.idText = string(x.id)
	}
	return x.idText
}

// RequestIDGenerated reports whether the id was generated (the client sent
// none).
func (x *Exchange) RequestIDGenerated() bool { return x.idGenerated }

// Variant returns the split's response header and the serving variant's
// name; nil without a split.
func (x *Exchange) Variant() (header, name []byte) {
	if x.split == nil {
		return nil, nil
	}
	return x.split.VariantHeader(), x.split.Variant(x.variant).NameBytes()
}

// Fallback returns the X-Switchyard-Fallback answer header and its value
// (why the request was served by its route's fallback route); nil when it
// was not.
func (x *Exchange) Fallback() (header, reason []byte) {
	if !x.fellBack {
		return nil, nil
	}
	return keyFallback, fallbackValues[x.fallbackWhy]
}

// keyFallback and fallbackValues are Fallback's header, made once.
var (
	keyFallback    = []byte("X-Switchyard-Fallback")
	fallbackValues = func() (v [len(telemetry.FallbackReasons)][]byte) {
		for i, s := range telemetry.FallbackReasons {
			v[i] = []byte(s)
		}
		return v
	}()
)

// Streamed reports whether the node's answer is relayed with Read (its
// head is in Response or GRPCResponse).
func (x *Exchange) Streamed() bool { return x.body != nil }

// Detach makes a streamed HTTP/1.1 exchange independent of the frontend's
// request, so that the frontend may recycle it (fasthttp's RequestCtx)
// while the answer is still relayed: what Finish reads later (method,
// path, request ID, model) is copied into x's own buffers and the request
// view forgets the rest. It reports false, changing nothing, when the
// request may still be read: not an HTTP/1.1 request with a streamed
// answer, or its body streams to the node.
func (x *Exchange) Detach() bool {
	r := &x.Req
	if r.h1 == nil || x.body == nil || r.BodyStream != nil || x.resp != &x.own {
		return false
	}
	b := append(x.detachBuf[:0], r.Method...)
	m := len(b)
	b = append(b, r.Path...)
	p := len(b)
	if !x.idGenerated { // a client's ID aliases its header
		b = append(b, x.id...)
	}
	x.detachBuf = b
	r.Method, r.Path = b[:m:m], b[m:p:p]
	if !x.idGenerated {
		x.id = b[p:]
	}
	if x.model != nil {
		x.modelBuf = append(x.modelBuf[:0], x.model...)
		x.model = x.modelBuf
	}
	r.URI, r.Host, r.Body, r.h1 = nil, nil, nil, nil
	x.clientRsp = nil
	return true
}

// Response is an HTTP node's answer (body buffered unless Streamed); nil
// for local and gRPC answers.
func (x *Exchange) Response() *fasthttp.Response {
	if x.local != nil {
		return nil
	}
	return x.resp
}

// GRPCResponse is a gRPC node's answer (its body streamed with Read, its
// trailers complete after Read returned io.EOF); nil otherwise.
func (x *Exchange) GRPCResponse() *h2client.Response {
	if x.local != nil {
		return nil
	}
	return x.hresp
}

// answer sets a local answer.
func (x *Exchange) answer(status int, ct string, body []byte) {
	x.status, x.localCT, x.local = status, ct, body
}

// fail sets the local answer for err (classify is the one mapping).
func (x *Exchange) fail(err error) {
	c := classify(err)
	x.err, x.errClass, x.retryAfter = err, c, c.retry
	x.answer(c.status, ctJSON, errorBody(err, c, x.id))
}

// match finds the route: the model comes from the KServe v2 path, the
// OpenAI JSON body (read by a validating scanner, no decode) or the first
// message of a gRPC call. It also decides whether to stream the answer.
func (x *Exchange) match() (*route.Route, bool, error) {
	x.model = nil
	r, st := &x.Req, x.set
	model, hasModel := route.KServeModel(r.Path)
	var f route.JSONFields
	switch {
	case hasModel:
		if !utf8Valid(model) {
			return nil, false, route.ErrModelNotUTF8
		}
	case r.Proto == GRPC:
		if hasGRPCModelField(r.Path) {
			var err error
			model, hasModel, err = x.readFirstGRPCMessage()
			x.EndBody()
			if err != nil {
				return nil, false, err
			}
		}
	case st.NeedBody() && string(r.Method) == "POST" && r.BodyStream == nil && route.IsJSONRequest(r.Header(keyContentType), r.Body):
		var err error
		if f, x.scratch, err = route.ScanJSON(r.Body, x.scratch); err != nil {
			return nil, false, err
		}
		model, hasModel = f.Model, f.HasModel
		x.jsonBody, x.wantsSSE = true, f.Stream
	}
	if hasModel {
		x.model = model
	}
	rt, err := st.Match(r.Host, r.Path, r, model, hasModel)
	if err != nil {
		return nil, false, err
	}
	stream := r.Proto == GRPC || rt.WantsStream(f.Stream, r.Header(keyAccept), r.Path)
	return rt, stream, nil
}

// extras is where a route with a split resolves the request's variant
// (the variant's target route serves it, and the variant is named in the
// response) and a route with a mirror is offered the request, before
// forwarding. It returns the route that serves the request.
func (x *Exchange) extras(rt *route.Route) *route.Route {
	if m := rt.Mirror(); m != nil {
		x.shadow = m.Offer(&x.Req, x.id)
	}
	s := rt.Splitter()
	if s == nil {
		return rt
	}
	a := s.AssignRequest(&x.Req)
	x.split, x.variant = s, a.Index
	return rt.Variant(a.Index)
}

// Read reads the streamed answer's body: what the node sends, as it comes,
// teed into the shadow comparison. An error other than io.EOF means the
// node broke the stream: the frontend must then abort the client's
// response (never end it cleanly), and the node is reported to its
// breaker.
func (x *Exchange) Read(p []byte) (int, error) {
	if x.body == nil {
		return 0, io.EOF
	}
	n, err := x.body.Read(p)
	return n, x.relayed(p[:n], err)
}

// Next is Read without the copy, for an HTTP node's streamed answer: the
// next piece of the body as the node sends it, a slice of the node
// connection's buffer that is valid until the next call. Same errors as
// Read; at the end it returns no bytes.
func (x *Exchange) Next() ([]byte, error) {
	b, ok := x.body.(interface{ Next() ([]byte, error) })
	if !ok {
		return nil, errNoNext
	}
	p, err := b.Next()
	return p, x.relayed(p, err)
}

var errNoNext = errors.New("gateway: BUG: Next on an answer that is not an HTTP node's stream")

// relayed is the bookkeeping of every piece of a streamed answer read
// (Read, Next): the shadow's tee, the end-of-stream marker, and what an
// error means.
func (x *Exchange) relayed(p []byte, err error) error {
	if len(p) > 0 {
		if x.shadow != nil {
			_, _ = x.shadow.Write(p)
		}
		if x.needDone && !x.sawDone {
			x.sawDone = x.done.scan(p)
		}
	}
	if err == io.EOF && x.cut() {
		err = errStreamCut
	}
	switch {
	case err == nil:
	case err == io.EOF:
		x.complete = true
	default:
		switch {
		case x.failed || x.cancelled:
		case x.w.gone.Load() || clientGone(x.Req.Ctx):
			x.cancelled = true // the client went away: not the node's fault
		default:
			x.failed = true
			x.node.Report(false)
			if x.abortClient != nil {
				_ = x.abortClient.Close()
			}
		}
	}
	return err
}

// CloseWithError is Finish for fasthttp's body stream: fasthttp calls it
// once the streamed response is written (err nil) or abandoned (err is
// the write error: the client went away).
func (x *Exchange) CloseWithError(err error) error {
	x.Finish(err)
	return nil
}

// AbortClientOnFailure makes a broken stream close c, the client's
// connection, so the client sees a truncated answer, not a clean end.
func (x *Exchange) AbortClientOnFailure(c io.Closer) { x.abortClient = c }

// NeedsBody reports whether routing may read the request's body (some
// route matches on the model or streams on "stream").
func (x *Exchange) NeedsBody() bool { return x.set.NeedBody() }

// errStreamCut: the node ended a streamed answer before its end: a
// chunked body without its terminal chunk, an OpenAI event stream without
// "data: [DONE]", a gRPC call without its status.
var errStreamCut = fmt.Errorf("%w: stream cut by the node", ErrUpstream)

// cut reports whether a body the node ended (io.EOF) was cut short.
func (x *Exchange) cut() bool {
	if x.hresp != nil {
		return h2key.Value(x.hresp.Trailer, "grpc-status") == "" && h2key.Value(x.hresp.Header, "grpc-status") == ""
	}
	switch x.resp.Header.ContentLength() {
	case -1: // chunked: the terminal chunk is the end, not the connection's
		return x.call.PeerClosed()
	case -2: // read until close: only the stream's own end marker tells
		return x.needDone && !x.sawDone
	}
	return false
}

// doneScanner finds "data: [DONE]" in an event stream read in pieces.
type doneScanner struct {
	tail [len(sseDone) - 1]byte
	n    int
}

const sseDone = "data: [DONE]"

// scan reports whether the marker ends in p (or spans the last pieces).
func (d *doneScanner) scan(p []byte) bool {
	if bytes.Contains(p, []byte(sseDone)) {
		return true
	}
	// The marker may straddle pieces: look at the kept tail plus p's head.
	var buf [2*len(sseDone) - 2]byte
	j := copy(buf[:], d.tail[:d.n])
	j += copy(buf[j:], p)
	if bytes.Contains(buf[:j], []byte(sseDone)) {
		return true
	}
	// Keep the last len(sseDone)-1 bytes seen.
	if len(p) >= len(d.tail) {
		d.n = copy(d.tail[:], p[len(p)-len(d.tail):])
	} else {
		keep := min(d.n, len(d.tail)-len(p))
		copy(d.tail[:], d.tail[d.n-keep:d.n])
		copy(d.tail[keep:], p)
		d.n = keep + len(p)
	}
	return false
}

// Failed reports whether the node broke a streamed answer.
func (x *Exchange) Failed() bool { return x.failed }

// Finish ends the request: clientErr is the error writing the answer to
// the client (nil when it was written). It settles the node (a completion
// for the weigher, or a release), records metrics, the split's outcome,
// the shadow's primary side and the span, frees the upstream connection
// and returns x to the pool. Call it exactly once.
func (x *Exchange) Finish(clientErr error) {
	status := x.status
	switch {
	case x.failed:
		status = fasthttp.StatusBadGateway
	case clientErr != nil || x.cancelled:
		status = telemetry.StatusClientClosed
	}
	if x.ka != nil {
		x.stopKeepAlive()
	}
	now := time.Now()
	d := now.Sub(x.start)
	ms := x.ms
	if ms == nil && x.route != nil {
		ms = x.route.Models().Lookup(x.model)
	}
	if ms != nil {
		ms.Observe(status, d)
	} else {
		x.core.unrouted.Observe(status, d)
	}
	x.settleTokens(ms, now)
	if x.node != nil {
		if ns := x.node.Stats(); ns != nil {
			ns.Observe(status, x.firstByte)
		}
	}
	failed := x.failed || x.err != nil
	if x.split != nil {
		x.split.Record(x.variant, split.Result{Status: status, Err: failed, Latency: d})
	}
	if x.shadow != nil {
		x.finishShadow(status, d)
	}
	x.traceGenAI(ms)
	telemetry.End(x.span, status)
	if x.set.Config().Telemetry.AccessLog {
		x.accessLog(ms, status, d)
	}
	if x.ep != nil {
		settle(x.ep, status)
	}
	x.releaseTenant()
	x.releaseUpstream()
	x.releaseBody()
	if x.counted {
		x.core.inflight.Add(-1)
	}
	x.reset()
	x.core.pool.Put(x)
}

// ErrBodyBudget: the gateway holds Limits.MaxBufferedBytes of request
// bodies already. 503 with Retry-After.
var ErrBodyBudget = errors.New("gateway: too many request bodies in memory; retry later")

// ReserveBody takes n more bytes of a body the frontend is about to hold
// from the gateway's budget (Limits.MaxBufferedBytes); false (nothing
// taken) when that would pass it. Finish gives everything back.
func (x *Exchange) ReserveBody(n int) bool {
	if n <= 0 {
		return true
	}
	c := x.core
	limit := int64(x.set.Config().Limits.MaxBufferedBytes)
	if c.buffered.Add(int64(n)) > limit {
		c.buffered.Add(-int64(n))
		return false
	}
	x.reserved += int64(n)
	return true
}

func (x *Exchange) releaseBody() {
	if x.reserved != 0 {
		x.core.buffered.Add(-x.reserved)
		x.reserved = 0
	}
}

// FinishAfterPanic ends an exchange whose handler panicked: it settles
// what it can and does not return x to the pool (its state is unknown).
// A second panic here is swallowed.
func (x *Exchange) FinishAfterPanic() {
	defer func() { _ = recover() }()
	if x.ep != nil {
		x.ep.Release()
	}
	x.releaseTenant()
	x.releaseUpstream()
	x.releaseBody()
	if x.counted {
		x.core.inflight.Add(-1)
	}
}

// finishShadow hands the primary's outcome to the mirror: a buffered body
// is copied (bounded), a streamed one was teed by Read.
func (x *Exchange) finishShadow(status int, d time.Duration) {
	h := x.shadow
	x.g.replay.endShadow()
	h.EndBody(false) // a body still arriving did not end with the primary
	var ct []byte
	switch {
	case x.hresp != nil:
		ct = []byte(h2key.Value(x.hresp.Header, "content-type"))
	case x.resp != nil && x.local == nil:
		ct = x.resp.Header.ContentType()
		if x.body == nil {
			_, _ = h.Write(x.resp.Body())
		}
	}
	h.Finish(shadow.Primary{Status: status, ContentType: ct, Latency: d})
}

// releaseUpstream frees what the node's answer holds: a streamed
// response's connection (back to the pool when the body was read to its
// end), a gRPC response body and its timers.
func (x *Exchange) releaseUpstream() {
	if x.resp != nil && x.resp.IsBodyStream() {
		x.call.Done(x.resp, x.complete && !x.failed)
	}
	if x.Req.Proto == GRPC {
		x.g.release(x)
	}
}

// reset readies x for the pool, keeping its buffers.
func (x *Exchange) reset() {
	x.endWatch() // first: the watchdog leaves x alone from here
	if cap(x.headBuf) > maxKeptHead {
		x.headBuf = nil
	}
	x.written = upstream.Written{}
	x.Req.reset()
	x.set, x.route, x.ep, x.node = nil, nil, nil, nil
	x.start, x.deadline = time.Time{}, time.Time{}
	x.id, x.idText, x.idGenerated, x.counted, x.stream, x.clientClose, x.pathChanged = nil, "", false, false, false, false, false
	x.status, x.local, x.localCT, x.err, x.retryAfter = 0, nil, "", nil, false
	x.errClass = errorClass{}
	x.call.Reset()
	if x.resp == &x.own {
		x.own.Reset()
	}
	x.clientRsp, x.resp, x.hresp, x.body, x.abortClient = nil, nil, nil, nil, nil
	x.failed, x.complete, x.cancelled = false, false, false
	x.needDone, x.sawDone, x.done = false, false, doneScanner{}
	x.split, x.variant, x.shadow, x.span = nil, 0, nil, nil
	x.model, x.tenant, x.holds, x.retryAfterBuf = nil, nil, false, x.retryAfterBuf[:0]
	if x.sseOn {
		x.sse.Reset(nil, openai.StreamOptions{}, nil) // drop the node's body
	}
	x.jsonBody, x.wantsSSE, x.sseOn, x.fellBack = false, false, false, false
	x.endpoint, x.usageMode = openai.EndpointOther, openai.UsageNone
	x.usage, x.finish = openai.Usage{}, openai.FinishReasons{}
	x.ms, x.times, x.ka = nil, telemetry.TokenTimes{}, nil
	x.retries, x.firstByte = 0, 0
	for i := range x.bodyBufs {
		if cap(x.bodyBufs[i]) > maxKeptBody {
			x.bodyBufs[i] = nil // a rare large body is not kept in the pool
		}
	}
}

// maxKeptBody bounds a rewritten-body buffer kept in the pool.
const maxKeptBody = 64 << 10

// accessLog writes the request's access log line.
func (x *Exchange) accessLog(ms *telemetry.ModelStats, status int, d time.Duration) {
	var tenant, model, rt, node string
	if x.tenant != nil {
		tenant = x.tenant.Name()
	}
	if ms != nil {
		model = ms.Model()
	}
	if x.route != nil {
		rt = x.route.Name()
	}
	if x.node != nil {
		node = x.node.ID()
	}
	attrs := []any{
		"method", string(x.Req.Method), "path", string(x.Req.Path), "status", status, "duration", d,
		"request_id", string(x.id), "tenant", tenant, "model", model, "route", rt, "node", node,
		"upstream_time", x.firstByte, "streamed", x.stream, "retries", x.retries,
	}
	if x.fellBack {
		attrs = append(attrs, "fallback", x.fallbackWhy.String())
	}
	if t := x.ttft(); t > 0 {
		attrs = append(attrs, "ttft", t)
	}
	if u := &x.usage; u.Found {
		attrs = append(attrs, "input_tokens", u.PromptTokens, "output_tokens", u.CompletionTokens)
	}
	if x.err != nil {
		attrs = append(attrs, "err", x.err)
	}
	x.core.log.Info("gateway: request", attrs...)
}

// maxPoints bounds a request's prefix points (gateway/prefix thins them).
const maxPoints = 48

// releaseTenant gives back the tenant's concurrency slot and the route
// queue's.
func (x *Exchange) releaseTenant() {
	x.releaseQueue()
	if x.holds {
		x.tenant.Release()
		x.holds = false
	}
}

// releaseQueue gives back the route queue's slot.
func (x *Exchange) releaseQueue() {
	if x.queue != nil {
		x.queue.Leave(x.class)
		x.queue = nil
	}
}

// dropAnswer gives up the node's answer before a fallback: the endpoint
// is released, a streamed body dropped with its connection.
func (x *Exchange) dropAnswer() {
	if x.ep != nil {
		settle(x.ep, x.status)
		x.ep, x.node = nil, nil
	}
	if x.ka != nil {
		x.stopKeepAlive()
	}
	x.discardAttempt()
	x.body, x.needDone, x.sawDone, x.done, x.sseOn = nil, false, false, doneScanner{}, false
	x.usage, x.finish, x.status = openai.Usage{}, openai.FinishReasons{}, 0
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

// clientGone reports whether err is the client going away.
func clientGone(ctx context.Context) bool {
	return ctx != nil && errors.Is(ctx.Err(), context.Canceled)
}
