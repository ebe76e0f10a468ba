package frontend

import (
	"net/netip"
	"sync/atomic"
	"syscall"

	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/writebatch"
)

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// acceptLoop accepts client connections and hands each to sniff in its own
// goroutine, so a slow client cannot stall accepting. It returns when the
// listener fails or is closed.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, h1 *chanListener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t := time.NewTimer(delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				continue
			}
			return fmt.Errorf("gateway: accept: %w", err)
		}
		delay = 0
		cc, ok := s.conns.admit(c, &s.lim)
		if !ok {
			_ = c.Close()
			continue
		}
		go s.sniff(ctx, cc, h1)
	}
}

// sniff decides a connection's protocol: TLS (then ALPN says h2 or
// http/1.1), the HTTP/2 preface (h2c prior knowledge), or HTTP/1.1. Plain
// connections are peeked without consuming bytes where the platform allows
// it, so HTTP/1.1 connections reach fasthttp unwrapped.
func (s *Server) sniff(ctx context.Context, c net.Conn, h1 *chanListener) {
	timeout := s.lim.ReadTimeout
	if timeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
	}
	if s.tlsConf != nil {
		// Batched writes only if the client picks HTTP/2 (serveH2Conn).
		wc := writebatch.Wrap(c, s.lim.WriteTimeout)
		tc := tls.Server(wc, s.tlsConf)
		hctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = c.Close()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			wc.Start()
			s.serveH2Conn(ctx, tc)
			return
		}
		h1.deliver(newClientConn(&plainConn{Conn: tc}))
		return
	}
	var buf [len(h2Preface)]byte
	n, err := peek(c, buf[:])
	if err == nil && n > 0 && (n >= len(buf) || !bytes.HasPrefix([]byte(h2Preface), buf[:n])) {
		// Decided without consuming anything.
		_ = c.SetReadDeadline(time.Time{})
		if n == len(buf) && string(buf[:]) == h2Preface {
			s.serveH2Conn(ctx, c)
			return
		}
		h1.deliver(newClientConn(c))
		return
	}
	// Could not peek, or a prefix of the preface arrived: read it.
	n = 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil {
			_ = c.Close()
			return
		}
		if !bytes.HasPrefix([]byte(h2Preface), buf[:n]) {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, pre: append([]byte(nil), buf[:n]...)}
	if n == len(buf) && string(buf[:]) == h2Preface {
		s.serveH2Conn(ctx, pc)
		return
	}
	h1.deliver(newClientConn(pc))
}

// serveH2Conn serves an HTTP/2 connection (TLS with ALPN h2, or plain
// with the preface unread) until it ends. Its writes are batched
// (writebatch): one system call for many streams' frames is most of what
// makes HTTP/2 cheap. TLS connections come batched from sniff.
func (s *Server) serveH2Conn(_ context.Context, c net.Conn) {
	if _, ok := c.(*tls.Conn); !ok {
		c = writebatch.New(c, s.lim.WriteTimeout)
	}
	s.h2.ServeConn(c)
}

// connLimits counts open client connections, in all and per client
// address (Limits.MaxConnections, MaxConnectionsPerIP).
type connLimits struct {
	open    atomic.Int64
	refused atomic.Int64

	mu    sync.Mutex
	perIP map[netip.Addr]int // guarded by mu; only with a per-address cap
}

// admit counts c in, or refuses it when a cap is reached. The returned
// connection gives its place back when it is closed.
func (l *connLimits) admit(c net.Conn, lim *config.Limits) (net.Conn, bool) {
	if l.open.Add(1) > int64(lim.MaxConnections) {
		l.open.Add(-1)
		l.refused.Add(1)
		return nil, false
	}
	cc := &countedConn{Conn: c, l: l}
	if lim.MaxConnectionsPerIP > 0 {
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip := ta.AddrPort().Addr().Unmap()
			l.mu.Lock()
			if l.perIP == nil {
				l.perIP = map[netip.Addr]int{}
			}
			if l.perIP[ip] >= lim.MaxConnectionsPerIP {
				l.mu.Unlock()
				l.open.Add(-1)
				l.refused.Add(1)
				return nil, false
			}
			l.perIP[ip]++
			l.mu.Unlock()
			cc.ip, cc.counted = ip, true
		}
	}
	return cc, true
}

// Open is the client connections open now.
func (l *connLimits) Open() int64 { return l.open.Load() }

// countedConn gives its place in connLimits back on Close.
type countedConn struct {
	net.Conn
	l       *connLimits
	ip      netip.Addr
	counted bool // in perIP
	once    sync.Once
	linger  atomic.Bool // Close drains what the client still sends first
}

func (c *countedConn) Close() error {
	if c.linger.CompareAndSwap(true, false) {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			go c.lingeringClose(tc)
			return nil
		}
	}
	c.release()
	return c.Conn.Close()
}

func (c *countedConn) release() {
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.counted {
			c.l.mu.Lock()
			if c.l.perIP[c.ip]--; c.l.perIP[c.ip] <= 0 {
				delete(c.l.perIP, c.ip)
			}
			c.l.mu.Unlock()
		}
	})
}

// Lingering close bounds (nginx's lingering_time and lingering_timeout).
const (
	lingerTime    = 2 * time.Second
	lingerTimeout = 500 * time.Millisecond
)

// lingeringClose closes a connection whose client may still be sending a
// request body the gateway refused without reading (RFC 9112 §9.6): the
// answer is written, so the write side closes first (FIN), then what the
// client sends is read and dropped until it stops, goes quiet for
// lingerTimeout or lingerTime passes. Closing at once with unread bytes
// would reset the connection, and the client could lose the answer. The
// connection keeps its place in connLimits until it is closed; the
// goroutine ends by the deadline.
func (c *countedConn) lingeringClose(tc *net.TCPConn) {
	defer func() {
		c.release()
		_ = tc.Close()
	}()
	if tc.CloseWrite() != nil {
		return
	}
	end := time.Now().Add(lingerTime)
	var buf [4096]byte
	for {
		dl := time.Now().Add(lingerTimeout)
		if dl.After(end) {
			dl = end
		}
		if tc.SetReadDeadline(dl) != nil {
			return
		}
		if _, err := tc.Read(buf[:]); err != nil {
			return
		}
	}
}

// lingerOnClose makes the client connection under c close lingering
// (lingeringClose): its request body was refused unread.
func lingerOnClose(c net.Conn) {
	for {
		switch w := c.(type) {
		case *clientConn:
			c = w.Conn
		case *prefixConn:
			c = w.Conn
		case *plainConn:
			c = w.Conn
		case *tls.Conn:
			c = w.NetConn()
		case *writebatch.Conn:
			c = w.NetConn()
		case *countedConn:
			w.linger.Store(true)
			return
		default:
			return
		}
	}
}

// SyscallConn lets the sniffer peek at the socket below.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("gateway: no socket")
	}
	return sc.SyscallConn()
}

// prefixConn replays bytes read while sniffing.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// plainConn hides *tls.Conn from fasthttp so a TLS-terminated request is
// forwarded as plain http to the node.
type plainConn struct{ net.Conn }

// chanListener is the net.Listener fasthttp serves: sniffed HTTP/1.1
// connections arrive through deliver.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

var _ http.Handler = http.HandlerFunc(nil)
