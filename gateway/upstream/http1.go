package upstream

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/deadline"
)

// The HTTP/1.1 client is the gateway's own, over fasthttp's request
// writer and response reader: a pool of keep-alive connections per node,
// so that an exchange knows its connection and can be aborted (Call.Abort)
// from another goroutine — a client that went away, a cancelled shadow
// copy — which fasthttp.HostClient cannot do.

// Connection pool bounds.
const (
	// idleFor is how long an idle connection is kept: below uvicorn's 5 s
	// keep-alive (vLLM, SGLang, Ray Serve), so the gateway rarely reuses
	// a connection the node just closed.
	idleFor = 4 * time.Second
	// readBufferSize is each connection's response reader: response
	// headers must fit in it.
	readBufferSize = 8 << 10
	// writeBufferSize is the pooled request writer, taken per request.
	writeBufferSize = 16 << 10
)

// Errors of the HTTP/1.1 client.
var (
	// ErrNoFreeConns: the node has Config.MaxConns connections busy.
	ErrNoFreeConns = errors.New("gateway: no free connection to the node")
	// ErrAborted: the exchange was aborted (Call.Abort).
	ErrAborted = errors.New("gateway: upstream exchange aborted")
	// ErrResponseTooLarge: the node's answer is over
	// Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("gateway: response over limits.max_response_bytes")
)

// conn is one pooled upstream connection: plaintext, or TLS over the
// lazy-deadline connection (deadline.Upstream resumes its spurious
// timeouts itself, so the TLS layer never sees one).
type conn struct {
	dc       deadline.Upstream
	w        io.Writer  // &dc, or the TLS connection
	tls      *tlsReader // nil for plaintext
	br       *bufio.Reader
	lastUsed int64 // mono(), while idle (one clock read, not time.Now's two)
}

// tlsReader reads a TLS connection and remembers that it ended: a node
// that closes with close_notify ends the TLS stream before the socket
// sees EOF, and a cut chunked body must still be seen as cut.
type tlsReader struct {
	tc  *tls.Conn
	eof bool
}

func (r *tlsReader) Read(p []byte) (int, error) {
	n, err := r.tc.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

// peerClosed reports whether the node closed the connection.
func (c *conn) peerClosed() bool { return c.dc.PeerClosed() || (c.tls != nil && c.tls.eof) }

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// pool holds a node's idle connections (LIFO, so the warm ones are
// reused and the cold ones age out) and counts the open ones.
type pool struct {
	n *Node

	mu     sync.Mutex // guards the fields below
	idle   []*conn
	open   int
	closed bool
}

func (p *pool) init(n *Node) { p.n = n }

// get returns an idle connection (reused true) or dials a new one.
func (p *pool) get() (c *conn, reused bool, err error) {
	now := mono()
	var stale [4]*conn
	ns := 0
	p.mu.Lock()
	for len(p.idle) > 0 {
		c = p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if now-c.lastUsed < int64(idleFor) {
			break
		}
		p.open--
		if ns < len(stale) {
			stale[ns] = c
			ns++
		} else {
			defer c.dc.Close()
		}
		c = nil
	}
	if c == nil {
		if p.open >= p.n.cfg.MaxConns {
			p.mu.Unlock()
			closeAll(stale[:ns])
			return nil, false, ErrNoFreeConns
		}
		p.open++
	}
	p.mu.Unlock()
	closeAll(stale[:ns])
	if c != nil {
		return c, true, nil
	}
	c, err = p.dial()
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		return nil, false, err
	}
	return c, false, nil
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		_ = c.dc.Close()
	}
}

func (p *pool) dial() (*conn, error) {
	connect := p.n.cfg.Timeouts.Connect
	d := net.Dialer{Timeout: max(connect, 0)}
	nc, err := d.Dial("tcp", p.n.addr.HTTP)
	if err != nil {
		return nil, err
	}
	c := &conn{}
	c.dc = deadline.Upstream{Conn: nc, FirstByte: p.n.cfg.Timeouts.FirstByte, Idle: p.n.cfg.Timeouts.Idle}
	if p.n.tlsH1 == nil {
		c.w = &c.dc
		c.br = bufio.NewReaderSize(&c.dc, readBufferSize)
		return c, nil
	}
	// The handshake is bounded by the connect timeout (else by the
	// first-byte timeout the connection applies to every answer).
	if connect > 0 {
		_ = c.dc.SetDeadline(time.Now().Add(connect))
	}
	tc := tls.Client(&c.dc, p.n.tlsH1)
	if err := tc.Handshake(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("gateway: TLS handshake with node %s: %w", p.n.addr.HTTP, err)
	}
	_ = c.dc.SetDeadline(time.Time{})
	c.tls = &tlsReader{tc: tc}
	c.w = tc
	c.br = bufio.NewReaderSize(c.tls, readBufferSize)
	return c, nil
}

// put returns a connection whose last exchange completed cleanly.
func (p *pool) put(c *conn) {
	c.lastUsed = mono()
	p.mu.Lock()
	if p.closed {
		p.open--
		p.mu.Unlock()
		_ = c.dc.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// drop closes a connection that cannot be reused.
func (p *pool) drop(c *conn) {
	_ = c.dc.Close()
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

// close closes the idle connections and makes put close later ones.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.closed = true
	p.mu.Unlock()
	closeAll(idle)
}

func (p *pool) closeStale(now time.Time) {
	cut := mono() + int64(time.Until(now)) - int64(idleFor) // now in mono()'s terms
	p.mu.Lock()
	var stale []*conn
	keep := p.idle[:0]
	for _, c := range p.idle {
		if c.lastUsed < cut {
			stale = append(stale, c)
		} else {
			keep = append(keep, c)
		}
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	p.open -= len(stale)
	p.mu.Unlock()
	closeAll(stale)
}

// Call is one HTTP/1.1 exchange's hold on its connection. It lives in the
// caller's request state (no allocation); Abort may come from any
// goroutine. The zero Call is ready; Reset it before reuse.
type Call struct {
	conn    atomic.Pointer[conn]
	aborted atomic.Bool

	// Owner only: a streamed response's connection and body, until Done.
	n        *Node
	streamed *conn
	close    bool // the connection cannot be reused after the stream
	body     Body
}

// Abort ends the exchange: its connection is closed, so a read or write
// in progress fails at once (ErrAborted), and a later Do fails before
// sending.
func (c *Call) Abort() {
	c.aborted.Store(true)
	if cn := c.conn.Swap(nil); cn != nil {
		_ = cn.dc.Close()
	}
}

// release takes the connection back from the Call; false when Abort took
// it first (it is closed then, and must only be dropped).
func (c *Call) release(cn *conn) bool { return c.conn.CompareAndSwap(cn, nil) }

// Aborted reports whether Abort was called.
func (c *Call) Aborted() bool { return c.aborted.Load() }

// Reset readies the Call for another request. Done must have been called
// for a streamed response.
func (c *Call) Reset() {
	c.conn.Store(nil)
	c.aborted.Store(false)
	c.n, c.streamed, c.close = nil, nil, false
	c.body = Body{}
}

func (c *Call) attach(cn *conn) bool {
	c.conn.Store(cn)
	if c.aborted.Load() {
		_ = cn.dc.Close()
		return false
	}
	return true
}

// Do sends req to the node and reads the response head, and the body too
// unless resp.StreamBody is set; the request's own Host header and target
// are sent as they are. deadline bounds the whole exchange (zero: none);
// the connection enforces the route's first-byte and idle timeouts per
// read. A reused keep-alive connection that turns out closed before any
// response byte (the node timed it out) is retried once on a fresh one,
// unless the request body streams.
//
// For a streamed body the connection stays with the Call: the caller
// reads Call.Body (not resp.BodyStream()) and then calls Done.
//
// Do counts the exchange as waiting for the node's answer until the
// caller reports it with ObserveFirstByte: every Do must be followed by
// exactly one ObserveFirstByte.
func (n *Node) Do(c *Call, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	n.fb.begin()
	return n.do(c, outgoing{req: req}, resp, deadline)
}

// Written is a request written out already, as it goes on the wire.
type Written struct {
	// Head is the request line and the header fields, each line ending
	// in CRLF, then the empty line. It must frame Body with a
	// Content-Length when Body is not empty, and must not ask to close
	// the connection.
	Head []byte
	Body []byte
	// HEAD: the request's method is HEAD (its answer has no body).
	HEAD bool
}

// DoWritten is Do for a request written out already (see Written): no
// fasthttp request is filled and serialised again.
func (n *Node) DoWritten(c *Call, req *Written, resp *fasthttp.Response, deadline time.Time) error {
	n.fb.begin()
	return n.do(c, outgoing{w: req}, resp, deadline)
}

// outgoing is the request of an exchange: a fasthttp request, or one
// written out already.
type outgoing struct {
	req *fasthttp.Request
	w   *Written
}

func (o outgoing) write(bw *bufio.Writer) error {
	if o.w == nil {
		return o.req.Write(bw)
	}
	if _, err := bw.Write(o.w.Head); err != nil {
		return err
	}
	_, err := bw.Write(o.w.Body)
	return err
}

func (o outgoing) bodyStream() bool { return o.w == nil && o.req.IsBodyStream() }

func (o outgoing) head() bool {
	if o.w == nil {
		return o.req.Header.IsHead()
	}
	return o.w.HEAD
}

func (o outgoing) connectionClose() bool { return o.w == nil && o.req.Header.ConnectionClose() }

// do is Do without the first-byte record (health probes).
func (n *Node) do(c *Call, req outgoing, resp *fasthttp.Response, deadline time.Time) error {
	stream := resp.StreamBody
	for attempt := 0; ; attempt++ {
		if c.aborted.Load() {
			return ErrAborted
		}
		cn, reused, err := n.pool.get()
		if err != nil {
			return err
		}
		if !c.attach(cn) {
			n.pool.drop(cn)
			return ErrAborted
		}
		closeAfter, err := n.exchange(cn, req, resp, deadline, stream)
		if err == nil {
			if stream && resp.IsBodyStream() {
				c.n, c.streamed, c.close = n, cn, closeAfter
				c.body.reset(cn.br, resp.Header.ContentLength())
				return nil
			}
			if !c.release(cn) || closeAfter {
				n.pool.drop(cn)
			} else {
				n.pool.put(cn)
			}
			return nil
		}
		c.release(cn)
		n.pool.drop(cn)
		if c.aborted.Load() {
			return ErrAborted
		}
		if reused && attempt == 0 && staleConn(err) && !req.bodyStream() {
			continue
		}
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return ErrResponseTooLarge
		}
		if err == io.EOF {
			return fasthttp.ErrConnectionClosed
		}
		return err
	}
}

// staleConn: a reused connection the node had closed.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, fasthttp.ErrConnectionClosed)
}

// exchange writes req and reads the response head (and body unless
// stream); closeAfter says the connection is not reusable afterwards.
func (n *Node) exchange(cn *conn, req outgoing, resp *fasthttp.Response, deadline time.Time, stream bool) (closeAfter bool, err error) {
	if err := cn.dc.SetWriteDeadline(deadline); err != nil {
		return true, err
	}
	bw := writerPool.Get().(*bufio.Writer)
	defer writerPool.Put(bw)
	bw.Reset(cn.w)
	defer bw.Reset(nil)
	err = req.write(bw)
	// A plaintext request that fit the writer whole is held
	// (deadline.Upstream.Hold: not when part of it was written already)
	// and written by the read for its answer; bw keeps it until then.
	if err == nil && cn.tls == nil && !req.bodyStream() && cn.dc.Hold() {
		defer cn.dc.Unhold()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return true, err
	}
	if err := cn.dc.SetReadDeadline(deadline); err != nil {
		return true, err
	}
	skip := resp.SkipBody || req.head()
	resp.Reset()
	resp.SkipBody, resp.StreamBody = skip, stream
	resp.Header.DisableNormalizing()
	if err := resp.ReadLimitBody(cn.br, n.cfg.MaxResponseBytes); err != nil {
		return true, err
	}
	return req.connectionClose() || resp.ConnectionClose(), nil
}

// Body is a streamed response's body (Do with resp.StreamBody), read
// from the connection's buffer; valid until Done.
func (c *Call) Body() *Body { return &c.body }

// PeerClosed reports whether the node closed the streamed response's
// connection while the body was read.
func (c *Call) PeerClosed() bool { return c.streamed != nil && c.streamed.peerClosed() }

// Done ends a streamed response: the body stream is released and the
// connection goes back to the pool when the body was read to its end
// (complete, and Body saw the end of its framing) and may be kept alive,
// else it is closed.
func (c *Call) Done(resp *fasthttp.Response, complete bool) {
	cn := c.streamed
	if cn == nil {
		return
	}
	_ = resp.CloseBodyStream()
	c.streamed = nil
	if !c.release(cn) || !complete || !c.body.Complete() || c.close || resp.ConnectionClose() {
		c.n.pool.drop(cn)
		return
	}
	c.n.pool.put(cn)
}
