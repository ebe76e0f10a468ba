package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
	"github.com/switchyard-dev/switchyard/internal/h2client"
	"golang.org/x/net/http2/hpack"
)

// grpcModelMethods carry the model name in field 1 of their request.
var grpcModelMethods = []byte("/inference.GRPCInferenceService/Model")

func hasGRPCModelField(path []byte) bool { return bytes.HasPrefix(path, grpcModelMethods) }

// kserveGRPC is the KServe v2 inference service's method prefix.
const kserveGRPC = "/inference.GRPCInferenceService/"

// KnownUnaryGRPC reports gRPC methods known to be unary (one message each
// way): those of the KServe v2 inference service but ModelStreamInfer.
// Their client ends its stream with its message, and their answer is one
// message, so neither side needs to see anything before the other's end.
func KnownUnaryGRPC[P string | []byte](path P) bool {
	return len(path) > len(kserveGRPC) && string(path[:len(kserveGRPC)]) == kserveGRPC &&
		string(path[len(kserveGRPC):]) != "ModelStreamInfer"
}

// grpcState is a gRPC call's exchange state: the first message (read for
// routing, replayed to every attempt), the rest of the client's stream,
// the call's context and timers.
type grpcState struct {
	prefix []byte
	replay *replayState    // per call: the transport may read after the call ended; nil for a whole call
	whole  wholeBody       // a whole call's body: read only within Do
	ctx    context.Context // the client's: cancelled when it goes away
	timer  *callTimer      // the total, first-byte and idle timeouts
	// noMessage: the client's stream ended before a first message; eof:
	// it ended right after it (a unary call read to its end).
	noMessage, eof bool

	attempts int // upstream requests made

	// The upstream request and its fields, built once per call (every
	// attempt sends the same) and kept from call to call of a pooled
	// Exchange: the transport reads them only within Do.
	req    h2client.Request
	fields []hpack.HeaderField
	idle   idleReader // the answer's body with the Idle limit (startBody)

	// Kept from call to call too: strings, which nothing changes.
	viaStr string // this gateway's Via entry (Core.via) as a string
	ipStr  string // the last client address sent in X-Forwarded-For
}

// readFirstGRPCMessage reads the first length-prefixed message of the
// call (when the client sends one) and its field 1, the model name.
func (x *Exchange) readFirstGRPCMessage() (model []byte, found bool, err error) {
	g := &x.g
	body := x.Req.BodyStream
	limit := x.set.Config().Limits.MaxBodyBytes
	buf := g.prefix[:0]
	need := 5
	for {
		if need > limit {
			return nil, false, ErrTooLarge
		}
		if cap(buf) < need {
			nb := make([]byte, len(buf), need)
			copy(nb, buf)
			buf = nb
		}
		k, rerr := io.ReadAtLeast(body, buf[len(buf):need], need-len(buf))
		buf = buf[:len(buf)+k]
		g.prefix = buf
		if rerr != nil {
			if len(buf) == 0 && rerr == io.EOF {
				g.noMessage = true
				return nil, false, nil // no message at all
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return nil, false, ErrRequestTimeout
			}
			return nil, false, errors.Join(route.ErrMalformedGRPC, rerr)
		}
		model, found, need, err = route.GRPCModel(buf)
		if err != nil {
			return nil, false, err
		}
		if need == 0 {
			if KnownUnaryGRPC(x.Req.Path) {
				err = g.readEnd(body)
			}
			return model, found, err
		}
	}
}

// readEnd reads past a unary call's one message to the client's end of
// stream, which a unary client sends with it: knowing the end before the
// first attempt lets the transport send the message and the end in one
// DATA frame, one write, instead of three. Bytes that follow (a client
// breaking the unary contract) stay in the prefix and go to the node; a
// client that sends no end (the gRPC protocol has a unary request end
// with its message) waits here until Limits.ReadTimeout cuts the body and
// gets DEADLINE_EXCEEDED (TestGRPCUnaryWithoutEndOfStream).
func (g *grpcState) readEnd(body io.Reader) error {
	var one [1]byte
	k, err := body.Read(one[:])
	if k > 0 {
		g.prefix = append(g.prefix, one[0])
	}
	switch {
	case err == io.EOF:
		g.eof = true
		return nil
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrRequestTimeout
	}
	return errors.Join(route.ErrMalformedGRPC, err)
}

// setup derives the call's context: the client's, with the route's total
// timeout.
func (g *grpcState) setup(x *Exchange) {
	parent := x.Req.Ctx
	if parent == nil {
		parent = context.Background()
	}
	g.ctx = parent
	// Far limits wait for the watchdog when it watches the call (a
	// shadow copy's is not: its context bounds it).
	watched := x.core.watching.Load() && x.w.phase.Load() == phaseForward
	g.timer = newCallTimer(x.start, x.route.Config().Timeouts.Total, watched)
	if watched {
		x.w.timer.Store(g.timer)
	}
	if !g.inline() {
		g.replay = &replayState{rest: x.Req.BodyStream, eof: g.noMessage || g.eof}
	}
	if x.shadow.BodyLater() {
		_, _ = x.shadow.WriteBody(g.prefix)
		if g.noMessage || g.eof {
			x.shadow.EndBody(true)
		} else {
			g.replay.shadow = x.shadow
		}
	}
}

// inline reports whether the whole call is in the prefix and small
// enough that the transport reads it within Do: its attempts need no
// replay state, and nothing reads the prefix once Do returned.
func (g *grpcState) inline() bool {
	return (g.noMessage || g.eof) && len(g.prefix) <= h2client.MaxInlineBody
}

// attemptGRPC sends the call to a node's gRPC address over h2c, trailers
// intact. It may go to another node only while no byte of the client's
// stream beyond the first message was read.
func (x *Exchange) attemptGRPC(n *upstream.Node) (status int, replayable bool, err error) {
	g := &x.g
	if g.ctx == nil {
		g.setup(x)
	}
	r := &x.Req
	// First byte: the node's response headers must come within FirstByte.
	g.timer.setPhase(x.route.Config().Timeouts.FirstByte)
	var body io.ReadCloser
	var replay *replayBody
	if g.replay == nil {
		g.whole = wholeBody{rest: g.prefix}
		body = &g.whole
	} else {
		replay = &replayBody{pre: g.prefix, s: g.replay}
		body = replay
	}
	resp, err := n.H2().Do(g.request(x, n, body), g.timer.abort)
	g.timer.setPhase(0)
	if err == nil {
		x.hresp = resp
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
			// An answer: the call goes on, and so does the client's
			// stream (a client may still be sending, or its end of
			// stream not yet read). Abandoning the body here would cut it.
			return resp.StatusCode, false, nil
		}
		// A refusal ends the call: a retry may replay it only if no byte
		// beyond the first message was read.
		return resp.StatusCode, !replay.abandon(), nil
	}
	touched := replay.abandon()
	switch {
	case g.timer.timedOut():
		err = errors.Join(ErrTimeout, err)
	case r.Ctx != nil && r.Ctx.Err() != nil:
		err = errors.Join(ErrClientCancelled, err)
	}
	return 0, !touched && !isTimeout(err) && !g.timer.aborted() && g.ctx.Err() == nil, err
}

// request returns the upstream request of an attempt on n. The fields
// are built once per call: every attempt sends the same. The target goes
// as it stands: no parse, no re-escaping.
func (g *grpcState) request(x *Exchange, n *upstream.Node, body io.ReadCloser) *h2client.Request {
	in := x.Req.h2
	g.attempts++
	if g.attempts == 1 {
		g.buildFields(x)
	}
	target := in.RequestURI
	if x.pathChanged || target == "" {
		target = string(x.targetURI())
	}
	authority := in.Host
	if authority == "" {
		authority = n.Addr().GRPC
	}
	g.req = h2client.Request{Method: in.Method, Scheme: n.GRPCScheme(), Authority: authority, Path: target,
		Header: g.fields, Body: body, ContentLength: -1, Ctx: g.ctx}
	if g.noMessage || g.eof {
		// The whole call is in the prefix: the transport sends it with
		// the headers, in one write.
		g.req.ContentLength = int64(len(g.prefix))
		if len(g.prefix) == 0 {
			g.req.Body = nil
		}
	}
	return &g.req
}

// buildFields fills the call's upstream fields from the client's header:
// its fields but the tenant's name (only the gateway names a tenant) and,
// for a tenant's call, its key; then the request ID when the gateway
// made it, Via and X-Forwarded-For with this hop added.
func (g *grpcState) buildFields(x *Exchange) {
	r := &x.Req
	f := g.fields[:0]
	var priorVia, priorFor []string
	for _, hf := range r.fields {
		switch hf.Name {
		case "x-switchyard-tenant":
			continue
		case "authorization", "x-api-key":
			if x.tenant != nil { // the key stays here; the tenant goes on
				continue
			}
		case "x-request-id":
			if x.idGenerated {
				continue
			}
		case "via":
			priorVia = append(priorVia, hf.Value)
			continue
		case "x-forwarded-for":
			if len(r.ipText) > 0 {
				priorFor = append(priorFor, hf.Value)
				continue
			}
		}
		f = append(f, hf)
	}
	if x.idGenerated {
		f = append(f, hpack.HeaderField{Name: "x-request-id", Value: x.RequestIDString()})
	}
	if g.viaStr == "" {
		g.viaStr = string(x.core.via)
	}
	f = append(f, hpack.HeaderField{Name: "via", Value: withPrior(priorVia, g.viaStr)})
	if ip := r.ipText; len(ip) > 0 { // as prepareHTTP's appendForwardedFor
		if string(ip) != g.ipStr {
			g.ipStr = string(ip)
		}
		f = append(f, hpack.HeaderField{Name: "x-forwarded-for", Value: withPrior(priorFor, g.ipStr)})
	}
	if x.tenant != nil {
		f = append(f, hpack.HeaderField{Name: "x-switchyard-tenant", Value: x.tenant.Name()})
	}
	g.fields = f
}

// withPrior is a list header's value with this hop's entry added after
// the client's.
func withPrior(prior []string, entry string) string {
	if len(prior) == 0 {
		return entry
	}
	return strings.Join(prior, ", ") + ", " + entry
}

// startBody relays the answer's body: a gap longer than the route's Idle
// timeout between two pieces cancels the call.
func (g *grpcState) startBody(x *Exchange, rt *route.Route) {
	x.body = x.hresp.Body
	if d := rt.Config().Timeouts.Idle; d > 0 {
		g.timer.setPhase(d)
		g.idle = idleReader{r: x.hresp.Body, t: g.timer, d: d}
		x.body = &g.idle
	}
}

// discard drops a refused attempt's answer.
func (g *grpcState) discard() {}

// release ends the call: its body, timers and context.
func (g *grpcState) release(x *Exchange) {
	if x.hresp != nil {
		_ = x.hresp.Body.Close()
	}
	if g.timer != nil {
		g.timer.stop()
	}
	if g.replay != nil {
		g.replay.close()
	}
	clear(g.fields) // the strings of this call's fields go
	*g = grpcState{prefix: g.prefix[:0], fields: g.fields[:0], viaStr: g.viaStr, ipStr: g.ipStr}
}

// idleReader pushes the call's idle limit after every read.
type idleReader struct {
	r io.Reader
	t *callTimer
	d time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	ir.t.touch(ir.d)
	return n, err
}

// replayState is shared by the attempts of one gRPC call: the client body
// after the first message, and whether any attempt read from it. What is
// read is teed into the shadow copy, whose body ends with the client's;
// the HTTP/2 transport reads request bodies on its own goroutine, so the
// shadow's body is only touched under mu (endShadow).
type replayState struct {
	mu      sync.Mutex
	rest    io.Reader
	touched bool
	eof     bool
	closed  bool
	shadow  interface {
		WriteBody(p []byte) (int, error)
		EndBody(complete bool)
	}
}

// replayBody is one attempt's request body: the buffered first message,
// then the rest of the client's stream. Once abandoned it reads nothing
// more, so a retry can never race a failed attempt for client bytes.
type replayBody struct {
	pre       []byte
	s         *replayState
	abandoned bool // guarded by s.mu
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.s.mu.Lock()
	if b.abandoned || b.s.closed {
		b.s.mu.Unlock()
		return 0, errAbandoned
	}
	if len(b.pre) > 0 {
		// Copied under mu: pre is the pooled call state's prefix, which
		// the next call reuses once close has run. The transport may
		// still be reading (a body it sends on its own goroutine, to a
		// node that answered before taking it all).
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		end := len(b.pre) == 0 && b.s.eof
		b.s.mu.Unlock()
		if end {
			return n, io.EOF // the end with the last bytes: one DATA frame
		}
		return n, nil
	}
	if b.s.eof {
		b.s.mu.Unlock()
		return 0, io.EOF
	}
	b.s.touched = true
	b.s.mu.Unlock()
	n, err := b.s.rest.Read(p)
	b.s.mu.Lock()
	if sh := b.s.shadow; sh != nil {
		if n > 0 {
			_, _ = sh.WriteBody(p[:n])
		}
		if err == io.EOF {
			sh.EndBody(true)
		}
	}
	if err == io.EOF {
		b.s.eof = true
	}
	b.s.mu.Unlock()
	return n, err
}

func (b *replayBody) Close() error { return nil }

// wholeBody is an attempt's body when the whole call is in the prefix
// (grpcState.inline).
type wholeBody struct{ rest []byte }

func (b *wholeBody) Read(p []byte) (int, error) {
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	if len(b.rest) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// Close does nothing, and touches nothing: the transport may close the
// body after the call ended.
func (b *wholeBody) Close() error { return nil }

// close makes every later read of the call's body fail: the call is over.
func (s *replayState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.shadow = nil
}

// endShadow abandons the shadow copy's body if the client's did not end.
func (s *replayState) endShadow() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shadow != nil {
		s.shadow.EndBody(false)
		s.shadow = nil
	}
}

// abandon stops the attempt's body and reports whether it read client
// bytes beyond the first message; a whole call's (nil) read none.
func (b *replayBody) abandon() bool {
	if b == nil {
		return false
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.abandoned = true
	return b.s.touched
}

var errAbandoned = errors.New("gateway: request attempt abandoned")
