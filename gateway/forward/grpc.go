package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// grpcModelMethods carry the model name in field 1 of their request.
var grpcModelMethods = []byte("/inference.GRPCInferenceService/Model")

func hasGRPCModelField(path []byte) bool { return bytes.HasPrefix(path, grpcModelMethods) }

// grpcState is a gRPC call's exchange state: the first message (read for
// routing, replayed to every attempt), the rest of the client's stream,
// the call's context and timers.
type grpcState struct {
	prefix []byte
	replay *replayState // per call: the transport may read after the call ended
	ctx    context.Context
	cancel context.CancelCauseFunc
	stopT  context.CancelFunc // the total timeout's
	idle   *time.Timer
	// noMessage: the client's stream ended before a first message.
	noMessage bool
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
			return model, found, nil
		}
	}
}

// setup derives the call's context: the client's, with the route's total
// timeout.
func (g *grpcState) setup(x *Exchange) {
	parent := x.Req.Ctx
	if parent == nil {
		parent = context.Background()
	}
	g.ctx, g.cancel = context.WithCancelCause(parent)
	if t := x.route.Config().Timeouts.Total; t > 0 {
		g.ctx, g.stopT = context.WithTimeoutCause(g.ctx, t, ErrTimeout)
	}
	g.replay = &replayState{rest: x.Req.BodyStream, eof: g.noMessage}
	if x.shadow.BodyLater() {
		g.replay.shadow = x.shadow
		_, _ = x.shadow.WriteBody(g.prefix)
		if g.noMessage {
			x.shadow.EndBody(true)
		}
	}
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
	var ttfb *time.Timer
	if d := x.route.Config().Timeouts.FirstByte; d > 0 {
		ttfb = time.AfterFunc(d, func() { g.cancel(ErrTimeout) })
	}
	body := &replayBody{pre: g.prefix, s: g.replay}
	out, err := http.NewRequestWithContext(g.ctx, string(r.Method), n.GRPCScheme()+"://"+n.Addr().GRPC+string(x.targetURI()), body)
	if err != nil {
		if ttfb != nil {
			ttfb.Stop()
		}
		return 0, false, errors.Join(ErrBadRequest, err)
	}
	out.Header = make(http.Header, len(r.h2.Header)+1)
	for k, vv := range r.h2.Header {
		out.Header[k] = vv
	}
	if x.idGenerated {
		out.Header.Set("X-Request-Id", string(x.id))
	}
	via := string(x.core.via)
	if prior := r.h2.Header.Get("Via"); prior != "" {
		via = prior + ", " + via
	}
	out.Header["Via"] = []string{via}
	if ip := r.ipText; len(ip) > 0 { // as prepareHTTP's appendForwardedFor
		xff := string(ip)
		if prior := r.h2.Header.Get("X-Forwarded-For"); prior != "" {
			xff = prior + ", " + xff
		}
		out.Header["X-Forwarded-For"] = []string{xff}
	}
	if x.tenant != nil { // the key stays here; the tenant goes on
		delete(out.Header, "Authorization")
		delete(out.Header, "X-Api-Key")
		out.Header["X-Switchyard-Tenant"] = []string{x.tenant.Name()}
	}
	out.Host = string(r.Host)
	out.ContentLength = -1
	resp, err := n.H2().RoundTrip(out)
	if ttfb != nil {
		ttfb.Stop()
	}
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
		return resp.StatusCode, !body.abandon(), nil
	}
	touched := body.abandon()
	switch {
	case errors.Is(context.Cause(g.ctx), ErrTimeout):
		err = errors.Join(ErrTimeout, err)
	case r.Ctx != nil && r.Ctx.Err() != nil:
		err = errors.Join(ErrClientCancelled, err)
	}
	return 0, !touched && !isTimeout(err) && g.ctx.Err() == nil, err
}

// startBody relays the answer's body: a gap longer than the route's Idle
// timeout between two pieces cancels the call.
func (g *grpcState) startBody(x *Exchange, rt *route.Route) {
	x.body = x.hresp.Body
	if d := rt.Config().Timeouts.Idle; d > 0 {
		g.idle = time.AfterFunc(d, func() { g.cancel(ErrTimeout) })
		x.body = &idleReader{r: x.hresp.Body, t: g.idle, d: d}
	}
}

// discard drops a refused attempt's answer.
func (g *grpcState) discard() {}

// release ends the call: its body, timers and context.
func (g *grpcState) release(x *Exchange) {
	if x.hresp != nil {
		_ = x.hresp.Body.Close()
	}
	if g.idle != nil {
		g.idle.Stop()
	}
	if g.cancel != nil {
		g.cancel(nil)
	}
	if g.stopT != nil {
		g.stopT()
	}
	if g.replay != nil {
		g.replay.close()
	}
	*g = grpcState{prefix: g.prefix[:0]}
}

// idleReader re-arms an idle timer after every read.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	ir.t.Reset(ir.d)
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
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		return n, nil
	}
	b.s.mu.Lock()
	if b.abandoned || b.s.closed {
		b.s.mu.Unlock()
		return 0, errAbandoned
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
// bytes beyond the first message.
func (b *replayBody) abandon() bool {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.abandoned = true
	return b.s.touched
}

var errAbandoned = errors.New("gateway: request attempt abandoned")
