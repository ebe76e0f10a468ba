//go:build unix

package frontend

import (
	"errors"
	"net"
	"syscall"
)

// peek waits for the first bytes of c and copies up to len(buf) of them
// into buf without consuming them (MSG_PEEK). It returns 0 and no error
// when c cannot be peeked; the caller then reads instead.
func peek(c net.Conn, buf []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK)
		return !errors.Is(perr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, err
	}
	if perr != nil {
		return 0, perr
	}
	if n == 0 {
		return 0, errors.New("gateway: connection closed before the first byte")
	}
	return n, nil
}

// Gone reports whether the client closed its connection (or reset it),
// looking without consuming: a readable end-of-file or an error. Called
// by the core's watchdog while the request waits for its node, so nothing
// else reads the connection then. TLS connections are looked at below
// TLS: a close_notify reads as data, so it is seen at the TCP close.
//
// A connection the gateway closed itself is gone too. Gone allocates
// nothing: the watchdog asks every 200 ms about every request waiting on
// its node or streaming, and the garbage of thousands of open streams
// added up (issue 11).
func (c *clientConn) Gone() bool {
	if c.closed.Load() {
		return true
	}
	if c.raw == nil {
		return false
	}
	c.gone = false
	_ = c.raw.Control(c.peekFn)
	return c.gone
}

// peekSocket is Gone's look at the socket (bound once per connection as
// peekFn, so that Gone allocates no closure).
func (c *clientConn) peekSocket(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.gone = n == 0 && err == nil || err != nil && err != syscall.EAGAIN && err != syscall.EINTR
}
