package deadline

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Held writes. Go's net.Conn.Read tries the socket before it parks in the
// runtime poller, so a read that comes right after a write to a peer that
// has not answered yet fails with EAGAIN first: one wasted read(2) per
// proxied request on each side (the node's answer, the client's next
// request). Waiting for readability without that read is possible
// (syscall.RawConn.Read with a callback that returns false), but the
// poller forgets readiness recorded before RawRead starts (poll.FD.RawRead
// resets it), so a skipped read can miss data that came just before and
// wait for no one. A held write closes that gap: the bytes that make the
// peer answer are written inside the RawRead, after the reset, so the
// answer's readiness cannot come before it.

// holder is one held write and the RawRead that sends it and reads after.
type holder struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool // step, bound once
	held []byte                // still to write
	buf  []byte                // the read's buffer, during rawRead
	n    int
	err  error
	op   string // "write" or "read": the call that failed with err
	slow bool   // the socket would block on the held write

	// Client only: the held bytes are taken from from by step itself, so
	// that a Close racing with the read either takes them first (and
	// writes them) or finds them written: a close waits for a system
	// call under RawRead to return.
	from  *atomic.Pointer[[]byte]
	taken *[]byte // what step took from from, for the pool
	first bool    // step has not run yet in this rawRead
}

// init binds the holder to c's socket; false when c has none.
func (h *holder) init(c net.Conn) bool {
	if h.raw != nil {
		return true
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	h.raw, h.fn = raw, h.step
	return true
}

// rawRead writes h.held and reads p in one RawRead, waiting for
// readability between the two without a read. slow: the socket could not
// take all of h.held at once; the rest is in h.held, to be written the
// usual way, and nothing was read. When RawRead fails before the write
// (a deadline already past, a closed connection), h.held is unwritten.
func (h *holder) rawRead(c net.Conn, p []byte) (n int, err error, slow bool) {
	h.buf, h.n, h.err, h.slow, h.first = p, 0, nil, false, true
	err = h.raw.Read(h.fn)
	h.buf = nil
	if h.slow {
		return 0, nil, true
	}
	if err == nil && h.err != nil {
		err = &net.OpError{Op: h.op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(h.op, h.err)}
	}
	if err == nil && h.n == 0 {
		return 0, io.EOF, false
	}
	return h.n, err, false
}

// step is the RawRead callback: the held write first (then false: wait
// for the answer), then one read (false again on EAGAIN).
func (h *holder) step(fd uintptr) bool {
	if h.first {
		h.first = false
		if h.from != nil {
			if hb := h.from.Swap(nil); hb != nil {
				h.taken, h.held = hb, *hb
			}
		}
	}
	for len(h.held) > 0 {
		n, err := syscall.Write(int(fd), h.held)
		if n > 0 {
			h.held = h.held[n:]
		}
		switch err {
		case nil:
			if len(h.held) == 0 {
				h.held = nil
				return false
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			h.slow = true
			return true
		default:
			h.held, h.err, h.op = nil, err, "write"
			return true
		}
	}
	if len(h.buf) == 0 {
		return true
	}
	for {
		n, err := syscall.Read(int(fd), h.buf)
		switch err {
		case nil:
			h.n = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			h.err, h.op = err, "read"
			return true
		}
	}
}

// Hold makes the connection hold what the next Write gives, while it is
// one slice, until the next Read, which writes it and then waits for the
// answer without a read that would fail with EAGAIN (see holder). The
// node cannot send before it has the request, so nothing it sends is
// missed; a FIN it sent while the connection sat idle is answered by a
// reset when the held request arrives, and that wakes the read. Hold
// reports false for a connection that is not a plain socket, and when a
// write already reached the connection since the last read (the request
// is larger than its writer's buffer and partly sent): the node may have
// answered that part already (a 413, a 401 on the head alone), and that
// answer's readiness would not be seen.
//
// The held slice is the caller's: it must stay unchanged from the Write
// that gave it until Unhold. So call Hold once the whole request is in
// the caller's writer, just before its Flush: a bufio.Writer flushing its
// full buffer mid-request reuses that buffer for the rest.
func (c *Upstream) Hold() bool {
	if c.wrote || !c.hold.init(c.Conn) {
		return false
	}
	c.holding, c.hold.held = true, nil
	return true
}

// Unhold stops holding and drops held bytes not yet written (an exchange
// that failed before its read).
func (c *Upstream) Unhold() { c.holding, c.hold.held = false, nil }

// writeHeldThenRead writes the held request and reads p (see Hold).
func (c *Upstream) writeHeldThenRead(p []byte) (int, error) {
	c.holding = false
	if c.FirstByte > 0 {
		c.wroteAt = time.Now().UnixNano()
	}
	c.wrote = true
	want := c.readDeadline()
	if err := c.armRead(want); err != nil {
		c.hold.held = nil
		return 0, err
	}
	for i := 0; ; i++ {
		// A RawRead that failed before the write (a spurious timeout)
		// leaves the held request for the next one.
		n, err, slow := c.hold.rawRead(c.Conn, p)
		if slow { // the socket is full: write the rest the usual way, then read
			rest := c.hold.held
			c.hold.held = nil
			if _, werr := c.Write(rest); werr != nil {
				return 0, werr
			}
			return c.Read(p)
		}
		if err == io.EOF {
			c.peerClosed = true
		}
		if err == nil || n > 0 || i == maxRearm || !spurious(err, want) {
			c.hold.held = nil
			return n, err
		}
		c.appliedR = want
		if c.Conn.SetReadDeadline(fromNanos(want)) != nil {
			c.hold.held = nil
			return n, err
		}
	}
}

// holdGuard bounds how long a client connection waits for readiness
// after a held answer before it reads anyway: readiness that came before
// the held write is forgotten (see holder), and a client that pipelined
// its next request behind the answer (or half-closed) sent it before.
const holdGuard = 200 * time.Millisecond

// maxHeld is the largest answer a client connection holds (fasthttp's
// write buffer: larger answers come in several writes).
const maxHeld = 16 << 10

var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, maxHeld); return &b }}

// EnableHold lets HoldNextWrite hold answers on this connection, which
// must be a plain socket (not TLS, no replayed prefix). False when it is
// not.
func (c *Client) EnableHold() bool {
	c.holdOK = c.hold.init(c.Conn)
	c.hold.from = &c.heldBuf
	return c.holdOK
}

// HoldNextWrite makes the next Write a held one: kept (copied) until the
// next Read, which writes it and then waits for the client's next request
// without a read that would fail with EAGAIN (see holder). For complete
// answers only: a streamed one must go out as it is written. A Write
// after a held one sends both; Close sends what is held. A client that
// sent something before the held answer went out (pipelining, a
// half-close) is read within holdGuard.
//
// A client that takes longer than holdGuard to send its next request (the
// usual LLM client, with seconds between requests) would pay a wake-up at
// the guard on top of the read it saves; after one such wait the
// connection holds no answer for the next holdBackoff ones.
func (c *Client) HoldNextWrite(on bool) {
	c.holdNext = false
	if !on || !c.holdOK {
		return
	}
	if k := c.holdSkip.Load(); k > 0 {
		c.holdSkip.Store(k - 1)
		return
	}
	c.holdNext = true
}

// holdBackoff is how many answers a client connection sends at once after
// a held answer's wait reached holdGuard.
const holdBackoff = 16

// Flush writes a held answer now (a read that will not reach the socket,
// such as one served from replayed bytes, must not leave it waiting).
func (c *Client) Flush() error {
	if hb := c.heldBuf.Swap(nil); hb != nil {
		return c.writeHeld(hb)
	}
	return nil
}

func (c *Client) writeHeld(hb *[]byte) error {
	_, err := c.writeSocket(*hb)
	putHeld(hb)
	return err
}

func putHeld(hb *[]byte) {
	*hb = (*hb)[:0]
	heldPool.Put(hb)
}

// writeHeldThenRead writes the held answer and reads the client's next
// request into p (see HoldNextWrite).
func (c *Client) writeHeldThenRead(p []byte) (int, error) {
	guard := time.Now().UnixNano() + int64(holdGuard)
	if a := c.applied.Load(); a == 0 || a > guard {
		c.applied.Store(guard)
		if err := c.Conn.SetReadDeadline(fromNanos(guard)); err != nil {
			return 0, err
		}
	}
	n, err, slow := c.hold.rawRead(c.Conn, p)
	if hb := c.hold.taken; hb != nil {
		c.hold.taken = nil
		defer putHeld(hb)
	} else if err := c.Flush(); err != nil {
		// RawRead failed before step ran (a deadline already past, a
		// closed connection): the answer is still held, unless Close
		// took it.
		return 0, err
	}
	rest := c.hold.held
	c.hold.held = nil
	if slow || len(rest) > 0 {
		// The socket is full: the rest goes the usual way, then the read.
		// (A Close meanwhile cuts it, as any write in progress.)
		if _, werr := c.writeSocket(rest); werr != nil {
			return 0, werr
		}
		return c.readSocket(p)
	}
	if err != nil && n == 0 && spurious(err, c.want.Load()) {
		// The guard (or another early deadline): read the usual way.
		c.holdSkip.Store(holdBackoff)
		return c.readSocket(p)
	}
	return n, err
}
