package frontend

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/forward"
)

// Streamed HTTP/1.1 answers of unknown length (event streams, chunked
// answers) are relayed on a hijacked connection rather than through
// fasthttp's response writer. A stream that fasthttp writes keeps, for its
// whole life, the serving goroutine with the deep stack it grew while the
// request was handled (8 KiB), the connection's 16 KiB write buffer and a
// 4 KiB copy buffer; thousands of slow token streams made that most of the
// gateway's memory (issue 11: 39 KiB per open stream). The relay instead
// runs on a fresh goroutine of its own, started by the hijack handler once
// the Exchange no longer reads fasthttp's request (relay.detach), so that
// neither the serving goroutine's stack nor fasthttp's read buffer and
// RequestCtx stay with the stream. It writes each piece the node sends
// as one chunk straight from the node connection's buffer
// (forward.Exchange.Next) through a pooled frame buffer, and holds no
// buffer of its own while it waits. When the stream ends cleanly the connection goes back to fasthttp
// (Server.h1ln) for the client's next request, with any bytes the client
// pipelined meanwhile replayed first.
//
// A node that breaks the stream, a client that goes away and a gateway
// past its shutdown bound all end the same way as before: the client
// connection is closed without the terminating chunk, so a broken stream
// never looks complete.

// relay is one hijacked stream. Pooled; run is bound once.
type relay struct {
	s    *Server
	x    *forward.Exchange
	cc   *clientConn
	resp *fasthttp.Response // the RequestCtx's: valid until run returns
	keep bool               // the request allows the connection to serve another
	run  fasthttp.HijackHandler
}

var relayPool sync.Pool // *relay

func acquireRelay() *relay {
	if r, ok := relayPool.Get().(*relay); ok {
		return r
	}
	r := &relay{}
	r.run = r.serve
	return r
}

// hijackStream hands a streamed answer (its head in ctx.Response) to a
// relay that runs once the handler returned. cc is the client connection
// under ctx. The relay is registered now, while fasthttp still counts the
// connection as served, so that Shutdown cannot miss it.
func (s *Server) hijackStream(ctx *fasthttp.RequestCtx, cc *clientConn, x *forward.Exchange) {
	r := acquireRelay()
	r.s, r.x, r.cc, r.resp = s, x, cc, &ctx.Response
	// A request body that streamed to the node may not have been read to
	// its end: the connection cannot serve another request then.
	r.keep = !ctx.Request.IsBodyStream()
	s.relays.add(r)
	cc.pending.Store(r)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(r.run)
}

// abandon ends a relay that never ran: fasthttp failed the connection
// before hijacking it (and closed it).
func (r *relay) abandon() {
	r.x.Finish(net.ErrClosed)
	r.s.relays.remove(r)
	r.release()
}

func (r *relay) release() {
	*r = relay{run: r.run}
	relayPool.Put(r)
}

// serve is the hijack handler: c reads what fasthttp had buffered of the
// connection, then the connection; writes go to r.cc. It writes the
// answer's head, then relays the body on a goroutine of its own when it
// can (detach), else here.
func (r *relay) serve(c net.Conn) {
	if !r.cc.pending.CompareAndSwap(r, nil) {
		return // abandoned: the connection was closed first
	}
	s, cc := r.s, r.cc
	owned := true // serve ends the relay until relay takes it over
	defer func() {
		if !owned {
			return
		}
		if p := recover(); p != nil {
			s.log.Error("gateway: panic relaying a stream", "panic", p, "stack", string(debug.Stack()))
			r.x.FinishAfterPanic()
			_ = cc.Close()
		}
		s.relays.remove(r)
		r.release()
	}()
	keep := r.keep && !r.resp.Header.ConnectionClose()
	r.resp.Header.SetContentLength(-1) // Transfer-Encoding: chunked
	_ = cc.SetWriteDeadline(time.Now().Add(s.lim.WriteTimeout))
	_, werr := cc.Write(r.resp.Header.Header())
	if werr == nil && r.detach(c, &keep) {
		owned = false
		go r.relay(nil, keep, nil)
		return
	}
	owned = false
	r.relay(c, keep, werr)
}

// detach readies the relay to leave fasthttp's hijack goroutine, which
// holds the connection's 16 KiB read buffer and the RequestCtx until its
// handler returns (more than half of an open stream's memory). What
// fasthttp had read past the request goes into the connection's replay
// now (later bytes stay in the socket, behind it), and the Exchange copies
// what it still needs of the request (forward.Exchange.Detach). False when
// the Exchange still reads the request: the relay then stays.
func (r *relay) detach(c net.Conn, keep *bool) bool {
	if !r.x.Detach() {
		return false
	}
	*keep = *keep && r.cc.takePipelined(c)
	r.resp = nil // fasthttp's: recycled once serve returns
	return true
}

// relay sends the answer's body as chunks, then hands the connection back
// to fasthttp (a clean end, keep) or closes it. c is the hijacked
// connection when the relay runs on the hijack goroutine, nil when
// detached (its pipelined bytes were taken already).
func (r *relay) relay(c net.Conn, keep bool, werr error) {
	s, cc, x := r.s, r.cc, r.x
	defer func() {
		s.relays.remove(r)
		r.release()
	}()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gateway: panic relaying a stream", "panic", p, "stack", string(debug.Stack()))
			if x != nil {
				x.FinishAfterPanic()
			}
			_ = cc.Close()
		}
	}()
	// Each write may take Limits.WriteTimeout (lazy deadlines: moving
	// it costs no timer work); a stream that is read lives on.
	wt := s.lim.WriteTimeout
	clean := false
	for werr == nil {
		p, err := x.Next()
		if len(p) > 0 {
			_ = cc.SetWriteDeadline(time.Now().Add(wt))
			werr = writeChunk(cc, p)
		}
		if err == io.EOF {
			if werr == nil {
				_ = cc.SetWriteDeadline(time.Now().Add(wt))
				_, werr = io.WriteString(cc, "0\r\n\r\n")
				clean = werr == nil
			}
			break
		}
		if err != nil {
			break // the node broke the stream, or the client went away
		}
	}
	x.Finish(werr)
	x = nil
	if !clean || !keep || s.stopping.Load() || c != nil && !cc.takePipelined(c) {
		_ = cc.Close() // never the terminating chunk of a broken stream
		return
	}
	s.h1ln.deliver(cc) // the client's next request
}

// frameBufs hold a chunk's framing and data for one write.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxFrameBuf is the largest frame buffer kept for reuse.
const maxFrameBuf = 64 << 10

// writeChunk writes p as one chunk (RFC 9112 §7.1) in one write.
func writeChunk(w io.Writer, p []byte) error {
	bp := frameBufs.Get().(*[]byte)
	b := appendHex((*bp)[:0], len(p))
	b = append(b, "\r\n"...)
	b = append(b, p...)
	b = append(b, "\r\n"...)
	_, err := w.Write(b)
	if cap(b) <= maxFrameBuf {
		*bp = b[:0]
		frameBufs.Put(bp)
	}
	return err
}

func appendHex(b []byte, n int) []byte {
	const digits = "0123456789abcdef"
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// takePipelined moves the bytes fasthttp had read past the request (a
// client that pipelined its next request behind the streamed one) from
// hijacked, which reads them first, into the connection's replay, so
// that the connection can go back to fasthttp. It reads nothing from the
// socket: a read deadline in the past stops it there. False when the
// connection cannot be handed back.
func (c *clientConn) takePipelined(hijacked net.Conn) bool {
	if c.SetReadDeadline(time.Unix(1, 0)) != nil {
		return false
	}
	var buf [512]byte
	var got []byte
	for {
		n, err := hijacked.Read(buf[:])
		got = append(got, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return false
		}
	}
	if len(got) > 0 {
		// What fasthttp had read came before anything still to replay.
		c.pre = append(got, c.pre...)
	}
	return c.SetReadDeadline(time.Time{}) == nil
}

// relaySet is the streams being relayed, so that Shutdown can wait for
// them and cut what is left past its bound.
type relaySet struct {
	mu   sync.Mutex
	all  map[*relay]struct{} // guarded by mu
	idle chan struct{}       // guarded by mu; closed when all empties, while waited for
	cut  atomic.Bool         // past the shutdown bound: new relays end at once
}

func (rs *relaySet) add(r *relay) {
	rs.mu.Lock()
	if rs.all == nil {
		rs.all = map[*relay]struct{}{}
	}
	rs.all[r] = struct{}{}
	rs.mu.Unlock()
	if rs.cut.Load() {
		_ = r.cc.Close()
	}
}

func (rs *relaySet) remove(r *relay) {
	rs.mu.Lock()
	delete(rs.all, r)
	if len(rs.all) == 0 && rs.idle != nil {
		close(rs.idle)
		rs.idle = nil
	}
	rs.mu.Unlock()
}

// wait returns once no stream is relayed, or when ctx ends (false).
func (rs *relaySet) wait(ctx context.Context) bool {
	rs.mu.Lock()
	if len(rs.all) == 0 {
		rs.mu.Unlock()
		return true
	}
	if rs.idle == nil {
		rs.idle = make(chan struct{})
	}
	idle := rs.idle
	rs.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// cutAll closes the client connection of every stream relayed, now and
// later: their relays end at their next write, or when the watchdog finds
// the client gone and aborts the node's side.
func (rs *relaySet) cutAll() {
	rs.cut.Store(true)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for r := range rs.all {
		_ = r.cc.Close()
	}
}

// count is the streams relayed now.
func (rs *relaySet) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.all)
}
