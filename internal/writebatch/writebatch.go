// Package writebatch wraps a connection so that writes made close together
// leave in one system call.
//
// Go's HTTP/2 client (and its server, which the gateway no longer uses)
// write each stream's frames and flush them on their own: a proxied gRPC
// call cost about five write(2) calls on the
// gateway, where a proxy that batches (HAProxy, grpc-go's transport) makes
// one write for many streams. A Conn takes each Write into a buffer and
// returns; a flusher goroutine, started when the buffer was empty, first
// yields once to the scheduler (as grpc-go's loopy writer does when its
// batch is small), so that the other streams ready to run add their frames,
// and then writes everything in one call.
package writebatch

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxPending is the buffer size above which Write waits for the
	// flusher: the memory one connection may hold, and its backpressure.
	maxPending = 256 << 10
	// yieldBelow: a batch smaller than this is held for one scheduling
	// round before it is written.
	yieldBelow = 16 << 10
	// keepBuffer is the largest buffer pooled once the flusher is idle;
	// larger ones (a burst's) are dropped.
	keepBuffer = 32 << 10
	// closeGrace bounds the write of what is still buffered at Close.
	closeGrace = time.Second
)

// bufPool holds the buffers of idle connections.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Conn is a net.Conn whose writes are batched. Reads, addresses and read
// deadlines are the wrapped connection's.
//
// A Write returns once its bytes are buffered; a failed flush fails the
// next Write and closes the connection. The flusher bounds each system
// call by the timeout given to New: a peer that reads nothing for that
// long ends the connection. Write deadlines apply to Write itself (a
// passed one fails it), not to the socket, so a caller that sets one per
// write (net/http's WriteByteTimeout) costs no timer per write.
type Conn struct {
	net.Conn
	timeout  time.Duration
	flushFn  func()      // c.flush, made once: a go statement with a method value would allocate
	batching atomic.Bool // off: writes and deadlines go straight through (Wrap)

	mu       sync.Mutex
	room     sync.Cond // flusher progress: a flush ended or failed
	buf      *[]byte   // pending bytes, in order; nil: none
	spare    *[]byte   // the other buffer while the flusher runs
	flushing bool      // a flusher goroutine runs
	err      error     // sticky: a flush failed
	closed   bool
	shut     bool      // the wrapped connection is closed (a flush failed)
	writeDL  time.Time // the caller's write deadline
	socketDL time.Time // the deadline set on the socket by the flusher
}

// New wraps c with batching on. timeout bounds each write system call:
// the longest a peer that stopped reading holds the connection (≤ 0:
// unbounded).
func New(c net.Conn, timeout time.Duration) *Conn {
	w := Wrap(c, timeout)
	w.Start()
	return w
}

// Wrap wraps c with batching off: writes and write deadlines go straight
// to c until Start. It is for a connection whose protocol is known only
// after a handshake written through the wrapper (TLS with ALPN).
func Wrap(c net.Conn, timeout time.Duration) *Conn {
	w := &Conn{Conn: c, timeout: timeout}
	w.room.L = &w.mu
	w.flushFn = w.flush
	return w
}

// Start turns batching on. The caller must own the connection: no write
// may run concurrently with Start.
func (c *Conn) Start() { c.batching.Store(true) }

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Write buffers p; the flusher writes it.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.batching.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return 0, net.ErrClosed
		}
		if c.err != nil {
			return 0, c.err
		}
		if !c.writeDL.IsZero() && !time.Now().Before(c.writeDL) {
			return 0, os.ErrDeadlineExceeded
		}
		if c.buf == nil || len(*c.buf) < maxPending {
			break
		}
		c.room.Wait() // the flusher's write ends within its timeout
	}
	if c.buf == nil {
		c.buf, c.spare = c.spare, nil
		if c.buf == nil {
			c.buf = bufPool.Get().(*[]byte)
		}
	}
	*c.buf = append(*c.buf, p...)
	if !c.flushing {
		c.flushing = true
		go c.flushFn()
	}
	return len(p), nil
}

// flush writes the buffer until it is empty, then ends.
func (c *Conn) flush() {
	yielded := false
	c.mu.Lock()
	for c.buf != nil && c.err == nil {
		if !yielded && len(*c.buf) < yieldBelow && !c.closed {
			// Let the goroutines that are ready to run add their frames.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
			yielded = true
			continue
		}
		out := c.buf
		c.buf = nil
		err := c.extendDeadline()
		c.mu.Unlock()
		if err == nil {
			_, err = c.Conn.Write(*out)
		}
		c.mu.Lock()
		*out = (*out)[:0]
		c.spare = out
		if err != nil {
			c.err = err
		}
		yielded = false
		c.room.Broadcast()
	}
	c.flushing = false
	// An idle connection holds no buffer (net/http's HTTP/2 writer
	// pools its buffer between flushes for the same reason).
	for _, b := range []*[]byte{c.spare, c.buf} {
		if b != nil && cap(*b) <= keepBuffer {
			*b = (*b)[:0]
			bufPool.Put(b)
		}
	}
	c.spare, c.buf = nil, nil
	if c.err != nil && !c.shut {
		// The peer lost bytes the caller counted as written: the
		// connection cannot go on, and its reader must learn it.
		c.shut = true
		_ = c.Conn.Close()
	}
	c.room.Broadcast()
	c.mu.Unlock()
}

// extendDeadline keeps the socket's write deadline at most one timeout
// ahead, moving it only when less than half of it is left: one timer
// update per half timeout, not per write. After Close the deadline stays
// Close's grace. Called with mu held.
func (c *Conn) extendDeadline() error {
	if c.closed || c.timeout <= 0 {
		return nil
	}
	now := time.Now()
	if c.socketDL.Sub(now) >= c.timeout/2 {
		return nil
	}
	c.socketDL = now.Add(c.timeout)
	return c.Conn.SetWriteDeadline(c.socketDL)
}

// Close writes what is buffered (for at most closeGrace), then closes the
// wrapped connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.room.Broadcast() // writers waiting for room give up
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeGrace))
		for c.flushing {
			c.room.Wait()
		}
	}
	defer c.mu.Unlock()
	if c.shut {
		return nil
	}
	c.shut = true
	return c.Conn.Close()
}

// SetWriteDeadline sets the deadline for Write calls (see Conn).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.batching.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	c.mu.Lock()
	c.writeDL = t
	c.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline of the wrapped connection and the
// write deadline of Write.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}
