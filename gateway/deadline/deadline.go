// Package deadline wraps connections so that socket deadlines are lazy:
// the client connections the HTTP/1.1 frontend serves (Client) and the
// upstream HTTP/1.1 connections to nodes (Upstream, which also enforces a
// route's first-byte and idle timeouts).
package deadline

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Lazy deadlines. Moving a socket deadline costs a clock read, a lock and
// a timer-heap update in the Go runtime, and fasthttp moves one several
// times per request (client side: the idle deadline, then the read
// timeout; upstream side: the write and read deadlines, then the
// first-byte timeout). Nearly always the new deadline is later than the
// one in force. So the connections below keep the deadline in force when
// the new one is later, and apply a deadline at once only when it is
// earlier. A read or write that times out on a deadline earlier than the
// one asked for (spurious) is resumed with the right deadline; one past
// the deadline asked for returns its timeout as before. The timeouts a
// caller sees are exactly the ones it set; only the timer work is saved.

// maxRearm bounds the resumptions of one call (each spurious timeout moves
// the deadline to the requested one, so one suffices; the bound only
// guards against a clock that misbehaves).
const maxRearm = 3

// nanos is t as Unix nanoseconds, 0 for the zero Time (no deadline).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// earlier reports whether deadline a (0: none) comes before b (0: none).
func earlier(a, b int64) bool { return a != 0 && (b == 0 || a < b) }

// spurious reports whether err is a timeout on a deadline before want
// (0: none), the deadline the caller asked for.
func spurious(err error, want int64) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return want == 0 || time.Now().UnixNano() < want
}

// Client is a client connection with lazy read and write deadlines.
// Fields are atomic so a deadline may be set from another goroutine while
// a read or write waits; an earlier deadline then takes effect at once,
// as with net.Conn. Embed it by value to add per-connection data; it must
// not be copied once used.
type Client struct {
	net.Conn
	want     atomic.Int64 // the read deadline asked for
	applied  atomic.Int64 // the read deadline in force on the socket
	wantW    atomic.Int64 // the write deadline asked for
	appliedW atomic.Int64 // the write deadline in force on the socket
}

// lazySet records deadline t as asked for in want and moves the socket's
// (applied, through set) only when t is earlier than the one in force.
func lazySet(t time.Time, want, applied *atomic.Int64, set func(time.Time) error) error {
	w := nanos(t)
	want.Store(w)
	a := applied.Load()
	if a == w || !earlier(w, a) && a != 0 {
		return nil // the one in force is earlier: keep it
	}
	applied.Store(w)
	return set(t)
}

func (c *Client) SetReadDeadline(t time.Time) error {
	return lazySet(t, &c.want, &c.applied, c.Conn.SetReadDeadline)
}

func (c *Client) SetWriteDeadline(t time.Time) error {
	return lazySet(t, &c.wantW, &c.appliedW, c.Conn.SetWriteDeadline)
}

func (c *Client) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *Client) Read(p []byte) (int, error) {
	for i := 0; ; i++ {
		n, err := c.Conn.Read(p)
		if err == nil || n > 0 || i == maxRearm {
			return n, err
		}
		w := c.want.Load()
		if !spurious(err, w) {
			return n, err
		}
		c.applied.Store(w)
		if c.Conn.SetReadDeadline(fromNanos(w)) != nil {
			return n, err
		}
	}
}

// Write writes p; a timeout on a deadline earlier than the one asked for
// resumes the write where it stopped, with the right deadline.
func (c *Client) Write(p []byte) (int, error) {
	written := 0
	for i := 0; ; i++ {
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || i == maxRearm {
			return written, err
		}
		w := c.wantW.Load()
		if !spurious(err, w) {
			return written, err
		}
		c.appliedW.Store(w)
		if c.Conn.SetWriteDeadline(fromNanos(w)) != nil {
			return written, err
		}
	}
}

// Upstream is an upstream HTTP/1.1 connection. It enforces the route's
// first-byte and idle timeouts: the first read after a write may wait
// FirstByte from the write, later reads Idle from their start, never past
// the deadline its user set (the total timeout). Deadlines are lazy, as
// above. It is used by one goroutine at a time, as a pooled connection is
// (Close may come from another).
type Upstream struct {
	net.Conn
	FirstByte, Idle time.Duration // 0: none
	outerR, outerW  int64         // the deadlines fasthttp asked for
	appliedR        int64         // the read deadline in force
	appliedW        int64         // the write deadline in force
	wroteAt         int64         // end of the last write, while wrote
	wrote           bool          // a write since the last read: the next read waits for the first byte
	peerClosed      bool          // a read returned io.EOF: the node closed the connection

	// Held writes (Hold): the request waits in held until the read for
	// its answer, which writes it and then waits for readability without
	// first trying a read that would fail with EAGAIN.
	raw     syscall.RawConn
	rawFn   func(fd uintptr) bool // c.rawStep, made once
	holding bool                  // Hold was called: the next Write is held
	held    []byte                // the held request, not yet written
	rawBuf  []byte                // the read's buffer, during a raw read
	rawN    int
	rawErr  error
	rawOp   string // "write" or "read": the call that failed with rawErr
	rawSlow bool   // the socket would block on the held write: finish it the usual way
}

// Hold makes the connection hold what Write is given, while it is one
// slice, until the next Read, which writes it then. Only for connections
// whose peer cannot send before it has the held bytes (a node answering a
// request): the read that follows waits for the socket to become readable
// without first trying a read, and readiness that came before the held
// write would not wake it. Hold reports false when the connection cannot
// hold (it is not a plain socket).
//
// Why: Go's net.Conn.Read tries the socket before it waits in the runtime
// poller, and right after the request is written the node has not answered
// yet, so nearly every upstream exchange costs a read that fails with
// EAGAIN. The poller forgets readiness recorded before a read starts
// (poll.FD.RawRead resets it), so waiting without that read is only safe
// when the write that causes the answer happens inside the same RawRead.
func (c *Upstream) Hold() bool {
	if c.raw == nil {
		sc, ok := c.Conn.(syscall.Conn)
		if !ok {
			return false
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		c.raw, c.rawFn = raw, c.rawStep
	}
	c.holding, c.held = true, nil
	return true
}

// Unhold stops holding and drops held bytes not yet written (an exchange
// that failed before its read). The held slice is the caller's: it must
// stay unchanged from the Write that gave it until Unhold.
func (c *Upstream) Unhold() { c.holding, c.held = false, nil }

// PeerClosed reports whether a read saw the node close the connection.
// A chunked body that ends on such an EOF was cut: its terminal chunk
// never came (fasthttp reads that end as a clean one).
func (c *Upstream) PeerClosed() bool { return c.peerClosed }

func (c *Upstream) SetReadDeadline(t time.Time) error {
	c.outerR = nanos(t)
	return c.armRead(c.outerR)
}

func (c *Upstream) SetWriteDeadline(t time.Time) error {
	c.outerW = nanos(t)
	if !earlier(c.outerW, c.appliedW) {
		return nil
	}
	c.appliedW = c.outerW
	return c.Conn.SetWriteDeadline(t)
}

func (c *Upstream) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// armRead makes the deadline in force no later than want.
func (c *Upstream) armRead(want int64) error {
	if !earlier(want, c.appliedR) {
		return nil
	}
	c.appliedR = want
	return c.Conn.SetReadDeadline(fromNanos(want))
}

// readDeadline is the deadline of the read about to start.
func (c *Upstream) readDeadline() int64 {
	var want int64
	if c.wrote {
		c.wrote = false
		if c.FirstByte > 0 {
			want = c.wroteAt + int64(c.FirstByte)
		}
	} else if c.Idle > 0 {
		want = time.Now().UnixNano() + int64(c.Idle)
	}
	if earlier(c.outerR, want) {
		want = c.outerR
	}
	return want
}

func (c *Upstream) Read(p []byte) (int, error) {
	if len(c.held) > 0 {
		return c.writeHeldThenRead(p)
	}
	want := c.readDeadline()
	if err := c.armRead(want); err != nil {
		return 0, err
	}
	for i := 0; ; i++ {
		n, err := c.Conn.Read(p)
		if err == io.EOF {
			c.peerClosed = true
		}
		if err == nil || n > 0 || i == maxRearm || !spurious(err, want) {
			return n, err
		}
		c.appliedR = want
		if c.Conn.SetReadDeadline(fromNanos(want)) != nil {
			return n, err
		}
	}
}

// writeHeldThenRead writes the held bytes and reads p inside one RawRead
// (see Hold).
func (c *Upstream) writeHeldThenRead(p []byte) (int, error) {
	c.holding = false
	if c.FirstByte > 0 {
		c.wroteAt = time.Now().UnixNano()
	}
	c.wrote = true
	want := c.readDeadline()
	if err := c.armRead(want); err != nil {
		c.held = nil
		return 0, err
	}
	c.rawBuf, c.rawN, c.rawErr, c.rawSlow = p, 0, nil, false
	defer func() { c.rawBuf, c.held = nil, nil }()
	for i := 0; ; i++ {
		err := c.raw.Read(c.rawFn)
		if c.rawSlow { // the socket's buffer is full: write the rest with the poller
			held := c.held
			c.held, c.rawSlow = nil, false
			if _, err := c.Write(held); err != nil {
				return 0, err
			}
			return c.Read(p)
		}
		if err == nil && c.rawErr != nil {
			err = &net.OpError{Op: c.rawOp, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(c.rawOp, c.rawErr)}
		}
		n := c.rawN
		if err == nil && n == 0 {
			c.peerClosed = true
			return 0, io.EOF
		}
		if err == nil || n > 0 || i == maxRearm || !spurious(err, want) {
			return n, err
		}
		c.appliedR = want
		if c.Conn.SetReadDeadline(fromNanos(want)) != nil {
			return n, err
		}
	}
}

// rawStep is the RawRead callback: first the held write (then false: wait
// for the answer), then one read (false again on EAGAIN).
func (c *Upstream) rawStep(fd uintptr) bool {
	for len(c.held) > 0 {
		n, err := syscall.Write(int(fd), c.held)
		if n > 0 {
			c.held = c.held[n:]
		}
		switch err {
		case nil:
			if len(c.held) == 0 {
				c.held = nil
				return false
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			c.rawSlow = true
			return true
		default:
			c.held, c.rawErr, c.rawOp = nil, err, "write"
			return true
		}
	}
	for {
		n, err := syscall.Read(int(fd), c.rawBuf)
		switch err {
		case nil:
			c.rawN = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.rawErr, c.rawOp = err, "read"
			return true
		}
	}
}

func (c *Upstream) Write(p []byte) (int, error) {
	if c.holding {
		if c.held == nil && len(p) > 0 {
			c.held = p
			return len(p), nil
		}
		// A second write: send both the usual way.
		held := c.held
		c.holding, c.held = false, nil
		if _, err := c.Write(held); err != nil {
			return 0, err
		}
	}
	var done int
	for i := 0; ; i++ {
		n, err := c.Conn.Write(p[done:])
		done += n
		if err == nil || i == maxRearm || !spurious(err, c.outerW) {
			if c.FirstByte > 0 {
				c.wroteAt = time.Now().UnixNano()
			}
			c.wrote = true
			return done, err
		}
		c.appliedW = c.outerW
		if c.Conn.SetWriteDeadline(fromNanos(c.outerW)) != nil {
			return done, err
		}
	}
}
