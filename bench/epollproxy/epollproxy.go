// Package epollproxy is a measuring stick for the proxy comparison: an
// HTTP/1.1 reverse proxy that owns its epoll loop on one locked OS thread,
// with no goroutine per connection, no Go poller and no HTTP library. It
// shows what a Go proxy costs per request when the runtime's scheduler and
// the HTTP parsing of fasthttp are out of the path, next to nginx (which
// works the same way) and bench/minproxy (which works like the gateway).
//
// It is not a gateway and not reachable from one: it knows only what the
// comparison sends. Requests and answers must carry Content-Length (or
// no body: an answer without it is taken to have none, so no HEAD and no
// close-delimited answers); a chunked one is refused (501 to the client,
// 502 for a node's). Headers pass through as they came, byte for byte. No
// timeouts, no retries, IPv4 only; Linux only.
//
// Serve owns the loop and every descriptor, and returns when its context
// is done or the loop fails.
package epollproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	startBuf = 16 << 10 // a connection's first read buffer
	maxBuf   = 1 << 20  // the largest request or answer it holds whole
)

// Proxy is one listening socket, its upstreams and its event loop.
type Proxy struct {
	lfd    int
	addr   string
	ep     int
	stop   int // eventfd that ends the loop
	ups    []*upstream
	next   int
	conns  []*conn // by descriptor
	events []unix.EpollEvent
}

// upstream is one node address and its idle kept-alive connections.
type upstream struct {
	sa   unix.Sockaddr
	idle []*conn
}

// conn is a client or node connection.
type conn struct {
	fd     int
	client bool
	in     []byte    // bytes read and not yet consumed
	out    []byte    // bytes still to write: a node's aliases its client's in, a client's is wbuf
	wbuf   []byte    // client: the answer being written
	peer   *conn     // the node serving the client's request, or the client a node answers
	reqLen int       // client: length of the request in flight
	up     *upstream // node: its upstream
	outOn  bool      // EPOLLOUT is on
}

// Listen binds addr (IPv4 host:port) and prepares a proxy to upstreams.
func Listen(addr string, upstreams []string) (*Proxy, error) {
	if len(upstreams) == 0 {
		return nil, errors.New("epollproxy: no upstreams")
	}
	p := &Proxy{lfd: -1, ep: -1, stop: -1, events: make([]unix.EpollEvent, 256)}
	for _, u := range upstreams {
		sa, err := sockaddr(u)
		if err != nil {
			return nil, err
		}
		p.ups = append(p.ups, &upstream{sa: sa})
	}
	sa, err := sockaddr(addr)
	if err != nil {
		return nil, err
	}
	if err := p.open(sa); err != nil {
		p.closeAll()
		return nil, err
	}
	return p, nil
}

func (p *Proxy) open(sa unix.Sockaddr) error {
	var err error
	if p.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("epollproxy: socket: %w", err)
	}
	if err := unix.SetsockoptInt(p.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("epollproxy: SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(p.lfd, sa); err != nil {
		return fmt.Errorf("epollproxy: bind: %w", err)
	}
	if err := unix.Listen(p.lfd, 4096); err != nil {
		return fmt.Errorf("epollproxy: listen: %w", err)
	}
	bound, err := unix.Getsockname(p.lfd)
	if err != nil {
		return fmt.Errorf("epollproxy: getsockname: %w", err)
	}
	if in4, ok := bound.(*unix.SockaddrInet4); ok {
		p.addr = net.JoinHostPort(net.IP(in4.Addr[:]).String(), strconv.Itoa(in4.Port))
	}
	if p.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epollproxy: epoll_create1: %w", err)
	}
	if p.stop, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("epollproxy: eventfd: %w", err)
	}
	for _, fd := range []int{p.lfd, p.stop} {
		if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epollproxy: epoll_ctl: %w", err)
		}
	}
	return nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// Serve runs the event loop on a locked OS thread until ctx is done, then
// closes every descriptor.
func (p *Proxy) Serve(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() { // wakes the loop once ctx is done
		defer close(exited)
		select {
		case <-ctx.Done():
			one := [8]byte{1}
			_, _ = unix.Write(p.stop, one[:])
		case <-done:
		}
	}()
	defer func() {
		close(done)
		<-exited // before its eventfd is closed
		p.closeAll()
	}()
	for {
		n, err := p.wait()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epollproxy: epoll_wait: %w", err)
		}
		for _, ev := range p.events[:n] {
			switch fd := int(ev.Fd); fd {
			case p.stop:
				return nil
			case p.lfd:
				p.accept()
			default:
				c := p.lookup(fd)
				if c == nil {
					continue // closed by an earlier event of this batch
				}
				if ev.Events&unix.EPOLLOUT != 0 && !p.flush(c) {
					continue
				}
				if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					p.readable(c)
				}
			}
		}
	}
}

// waitMs bounds one wait, should a preemption signal be missed.
const waitMs = 100

// wait returns the number of ready events. It waits in a raw system call,
// one the runtime does not see, as read and write do: with the loop's
// system calls on the runtime's path, sysmon ran every 20 µs and woke
// threads (strace, 3 s: 12,000–14,000 nanosleeps, about 0.6 per request,
// and 1,100–1,400 futex calls; the wait alone made raw changed little);
// with all three raw, 289 nanosleeps and 450 futex calls. The runtime
// still preempts the loop after 10 ms (its signal ends the wait with
// EINTR), so the stop goroutine and the garbage collector get their turn.
func (p *Proxy) wait() (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.ep), uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), waitMs, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// read and write are raw system calls too (see wait): the descriptors do
// not block, so the runtime's entersyscall and exitsyscall buy nothing.
func read(fd int, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func write(fd int, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func (p *Proxy) lookup(fd int) *conn {
	if fd < len(p.conns) {
		return p.conns[fd]
	}
	return nil
}

func (p *Proxy) track(c *conn, events uint32) bool {
	for c.fd >= len(p.conns) {
		p.conns = append(p.conns, make([]*conn, len(p.conns)+64)...)
	}
	p.conns[c.fd] = c
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)}); err != nil {
		p.conns[c.fd] = nil
		_ = unix.Close(c.fd)
		return false
	}
	return true
}

func (p *Proxy) accept() {
	for {
		fd, _, err := unix.Accept4(p.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or a failed accept: the next event retries
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		p.track(&conn{fd: fd, client: true, in: make([]byte, 0, startBuf)}, unix.EPOLLIN|unix.EPOLLRDHUP)
	}
}

// readable reads what c has and acts on it.
func (p *Proxy) readable(c *conn) {
	if len(c.in) == cap(c.in) {
		if cap(c.in) >= maxBuf {
			p.fail(c, "431 Request Header Fields Too Large")
			return
		}
		c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
	}
	n, err := read(c.fd, c.in[len(c.in):cap(c.in)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil || n == 0 {
		p.drop(c)
		return
	}
	c.in = c.in[:len(c.in)+n]
	if c.client {
		p.dispatch(c)
	} else {
		p.answer(c)
	}
}

// dispatch sends the client's next whole request to a node, if none is in
// flight.
func (p *Proxy) dispatch(c *conn) {
	if c.peer != nil || len(c.out) > 0 {
		return
	}
	total, _, status := messageLen(c.in, false)
	switch {
	case status != "":
		p.fail(c, status)
		return
	case total == 0 || len(c.in) < total:
		if total > maxBuf {
			p.fail(c, "413 Content Too Large")
		}
		return
	}
	up := p.ups[p.next]
	p.next = (p.next + 1) % len(p.ups)
	var n *conn
	if k := len(up.idle); k > 0 {
		n, up.idle = up.idle[k-1], up.idle[:k-1]
	} else if n = p.connect(up); n == nil {
		p.fail(c, "502 Bad Gateway")
		return
	}
	c.reqLen, c.peer, n.peer = total, n, c
	n.out = c.in[:total]
	p.flush(n)
}

// connect opens a node connection; the request waits in out for EPOLLOUT.
func (p *Proxy) connect(up *upstream) *conn {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, up.sa); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return nil
	}
	n := &conn{fd: fd, up: up, in: make([]byte, 0, startBuf)}
	if !p.track(n, unix.EPOLLIN|unix.EPOLLRDHUP) {
		return nil
	}
	return n
}

// flush writes c.out; it reports whether c is still open.
func (p *Proxy) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, err := write(c.fd, c.out)
		if err == unix.EAGAIN || err == unix.ENOTCONN {
			p.watchOut(c, true) // a full socket, or a connect in progress
			return true
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.drop(c)
			return false
		}
		c.out = c.out[n:]
	}
	p.watchOut(c, false)
	if c.client && c.peer == nil {
		p.dispatch(c) // a pipelined request waited for this answer to go
	}
	return true
}

// watchOut turns EPOLLOUT on or off for c.
func (p *Proxy) watchOut(c *conn, on bool) {
	if c.outOn == on {
		return
	}
	c.outOn = on
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if on {
		ev |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}

// answer relays a node's whole answer to its client and returns the node
// to the idle list.
func (p *Proxy) answer(n *conn) {
	c := n.peer
	if c == nil {
		p.drop(n) // an idle node does not speak first
		return
	}
	total, closing, status := messageLen(n.in, true)
	switch {
	case status != "":
		p.drop(n) // its client gets the 502
		return
	case total == 0 || len(n.in) < total:
		if total > maxBuf {
			p.drop(n)
		}
		return
	case len(n.in) > total:
		p.drop(n) // more than one answer: out of step
		return
	}
	// The answer is copied, so the node is idle at once; unless it said
	// Connection: close, or answered before the whole request was written
	// (a node's early 413): then the connection is closed rather than left
	// out of step.
	retire := closing || len(n.out) > 0
	c.wbuf = append(c.wbuf[:0], n.in...)
	c.out = c.wbuf
	n.in, n.out = n.in[:0], nil
	n.peer, c.peer = nil, nil
	if retire {
		p.drop(n)
	} else {
		n.up.idle = append(n.up.idle, n)
	}
	rest := copy(c.in, c.in[c.reqLen:])
	c.in, c.reqLen = c.in[:rest], 0
	p.flush(c)
}

// fail answers c with status and closes it.
func (p *Proxy) fail(c *conn, status string) {
	msg := "HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	_, _ = write(c.fd, []byte(msg))
	p.drop(c)
}

// drop closes c; a node's client gets a 502, a client's node is closed
// (its answer can no longer be placed).
func (p *Proxy) drop(c *conn) {
	if p.lookup(c.fd) != c {
		return
	}
	p.conns[c.fd] = nil
	_ = unix.Close(c.fd)
	peer := c.peer
	c.peer = nil
	if peer == nil {
		if !c.client {
			p.forget(c)
		}
		return
	}
	peer.peer = nil
	if c.client {
		p.drop(peer)
	} else {
		p.fail(peer, "502 Bad Gateway")
	}
}

// forget removes an idle node connection from its list.
func (p *Proxy) forget(n *conn) {
	idle := n.up.idle
	for i, m := range idle {
		if m == n {
			n.up.idle = append(idle[:i], idle[i+1:]...)
			return
		}
	}
}

func (p *Proxy) closeAll() {
	for _, c := range p.conns {
		if c != nil {
			_ = unix.Close(c.fd)
		}
	}
	p.conns = nil
	for _, fd := range []int{p.lfd, p.stop, p.ep} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	p.lfd, p.stop, p.ep = -1, -1, -1
}

// messageLen returns the length of the first HTTP/1.1 message in b (head
// and body), 0 while its head is incomplete, or an error status line for
// one the proxy does not take; and whether it says "Connection: close".
// answer says b is a node's answer.
func messageLen(b []byte, answer bool) (int, bool, string) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= maxBuf {
			return 0, false, "431 Request Header Fields Too Large"
		}
		return 0, false, ""
	}
	head := b[:end+2]
	line := bytes.IndexByte(head, '\n')
	bodyLen, closing := 0, false
	for rest := head[line+1:]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		h := rest[:i]
		rest = rest[i+1:]
		colon := bytes.IndexByte(h, ':')
		if colon < 0 {
			return 0, false, "400 Bad Request"
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.Atoi(string(value))
			if err != nil || v < 0 {
				return 0, false, "400 Bad Request"
			}
			if v > maxBuf {
				return 0, false, "413 Content Too Large"
			}
			bodyLen = v
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, "501 Not Implemented"
		}
	}
	if answer && bytes.HasPrefix(b, []byte("HTTP/1.1 1")) {
		return 0, false, "502 Bad Gateway" // interim answers are not relayed
	}
	return end + 4 + bodyLen, closing, ""
}

func sockaddr(hostport string) (unix.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp4", hostport)
	if err != nil {
		return nil, fmt.Errorf("epollproxy: %q: %w", hostport, err)
	}
	sa := &unix.SockaddrInet4{Port: a.Port}
	if ip4 := a.IP.To4(); ip4 != nil {
		copy(sa.Addr[:], ip4)
	}
	return sa, nil
}
