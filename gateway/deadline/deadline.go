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

	// Held answers (HoldNextWrite): the serving goroutine's, but for
	// heldBuf, which Close (from any goroutine) may take and send.
	holdOK   bool
	holdNext bool
	holdSkip atomic.Int32 // answers still to send at once (holdBackoff); atomic for tests only
	heldBuf  atomic.Pointer[[]byte]
	hold     holder
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

// Read reads p; a held answer (HoldNextWrite) is written first.
func (c *Client) Read(p []byte) (int, error) {
	if c.heldBuf.Load() != nil {
		return c.writeHeldThenRead(p)
	}
	return c.readSocket(p)
}

// readSocket reads p; a timeout on a deadline earlier than the one asked
// for resumes the read with the right deadline.
func (c *Client) readSocket(p []byte) (int, error) {
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

// Write writes p, or holds it (HoldNextWrite).
func (c *Client) Write(p []byte) (int, error) {
	if hb := c.heldBuf.Swap(nil); hb != nil { // a second write: both go now
		if err := c.writeHeld(hb); err != nil {
			return 0, err
		}
	} else if c.holdNext && len(p) > 0 && len(p) <= maxHeld {
		c.holdNext = false
		hb := heldPool.Get().(*[]byte)
		*hb = append((*hb)[:0], p...)
		c.heldBuf.Store(hb)
		return len(p), nil
	}
	c.holdNext = false
	return c.writeSocket(p)
}

// Close sends a held answer (within a second) and closes the connection.
func (c *Client) Close() error {
	if hb := c.heldBuf.Swap(nil); hb != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(*hb)
		putHeld(hb)
	}
	return c.Conn.Close()
}

// writeSocket writes p; a timeout on a deadline earlier than the one asked
// for resumes the write where it stopped, with the right deadline.
func (c *Client) writeSocket(p []byte) (int, error) {
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

	holding bool   // Hold was called: the next Write is held
	hold    holder // the held request and the read that sends it
}

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
	if len(c.hold.held) > 0 {
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

func (c *Upstream) Write(p []byte) (int, error) {
	if c.holding {
		if c.hold.held == nil && len(p) > 0 {
			c.hold.held = p
			return len(p), nil
		}
		// A second write: send both the usual way.
		held := c.hold.held
		c.holding, c.hold.held = false, nil
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
