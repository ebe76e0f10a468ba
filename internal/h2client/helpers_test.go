package h2client_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-dev/switchyard/internal/h2client"
)

// testTimeout bounds every wait of these tests: requests, body reads,
// channel receives.
const testTimeout = 10 * time.Second

// dialer opens the TCP connections of a Transport and records them.
type dialer struct {
	mu     sync.Mutex
	target string
	locals []string // local addresses of the connections opened, in order
}

func (d *dialer) dial(ctx context.Context) (net.Conn, error) {
	d.mu.Lock()
	target := d.target
	d.mu.Unlock()
	nd := net.Dialer{Timeout: testTimeout}
	c, err := nd.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.locals = append(d.locals, c.LocalAddr().String())
	d.mu.Unlock()
	return c, nil
}

// count is the number of connections opened so far.
func (d *dialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.locals)
}

// local is the local address of the i-th connection opened (from 0).
func (d *dialer) local(i int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i >= len(d.locals) {
		return ""
	}
	return d.locals[i]
}

// retarget makes later dials go to addr.
func (d *dialer) retarget(addr string) {
	d.mu.Lock()
	d.target = addr
	d.mu.Unlock()
}

// newTransport returns a Transport dialling addr over TCP (h2c), with
// set applied to it (if not nil); the test's cleanup closes it.
func newTransport(t testing.TB, addr string, set func(*h2client.Transport)) (*h2client.Transport, *dialer) {
	t.Helper()
	d := &dialer{target: addr}
	tr := &h2client.Transport{Dial: d.dial}
	if set != nil {
		set(tr)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, d
}

// h2cServer is net/http's HTTP/2 server on a loopback listener, speaking
// h2c with prior knowledge.
type h2cServer struct {
	*http.Server
	addr string
	// closed receives the remote address of every connection that
	// reached http.StateClosed.
	closed chan string
	// goaways receives a value when the server has written a GOAWAY
	// frame (to the socket: the client may not have read it yet).
	goaways chan struct{}
}

// startH2C serves h on a new loopback listener; cfg (may be nil) is the
// server's HTTP2 configuration. The test's cleanup closes the server.
func startH2C(t testing.TB, h http.Handler, cfg *http.HTTP2Config) *h2cServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	s := &h2cServer{addr: ln.Addr().String(), closed: make(chan string, 1024), goaways: make(chan struct{}, 16)}
	s.Server = &http.Server{
		Handler:           h,
		Protocols:         &p,
		HTTP2:             cfg,
		ReadHeaderTimeout: testTimeout,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed {
				select {
				case s.closed <- c.RemoteAddr().String():
				default:
				}
			}
		},
	}
	go func() { _ = s.Serve(&tapListener{Listener: ln, goaways: s.goaways}) }()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tapListener's connections follow the frames the server writes and
// signal every GOAWAY.
type tapListener struct {
	net.Listener
	goaways chan struct{}
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, goaways: l.goaways}, nil
}

type tapConn struct {
	net.Conn
	goaways chan struct{}
	mu      sync.Mutex
	frames  frameScanner
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.frames.scan(p, func(typ http2.FrameType, _ http2.Flags, _ uint32) {
		if typ == http2.FrameGoAway {
			signal(c.goaways, struct{}{})
		}
	})
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// frameScanner follows a byte stream of HTTP/2 frames as it is written,
// in pieces of any size, and reports each frame's header.
type frameScanner struct {
	skip int    // bytes still to skip before the first frame (a client preface)
	hdr  []byte // the frame header read so far
	left int    // payload bytes of the current frame still to come
}

func (s *frameScanner) scan(p []byte, seen func(typ http2.FrameType, flags http2.Flags, streamID uint32)) {
	for len(p) > 0 {
		switch {
		case s.skip > 0:
			n := min(s.skip, len(p))
			s.skip, p = s.skip-n, p[n:]
		case s.left > 0:
			n := min(s.left, len(p))
			s.left, p = s.left-n, p[n:]
		default:
			n := min(9-len(s.hdr), len(p))
			s.hdr, p = append(s.hdr, p[:n]...), p[n:]
			if len(s.hdr) == 9 {
				s.left = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
				seen(http2.FrameType(s.hdr[3]), http2.Flags(s.hdr[4]), binary.BigEndian.Uint32(s.hdr[5:])&(1<<31-1))
				s.hdr = s.hdr[:0]
			}
		}
	}
}

func (s *h2cServer) url(path string) string { return "http://" + s.addr + path }

// testContext is cancelled after testTimeout or when the test ends.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newRequest builds a request under ctx; it fails the test on error.
func newRequest(t testing.TB, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// result is what a RoundTrip returned.
type result struct {
	resp *http.Response
	err  error
}

// goRoundTrip runs tr.RoundTrip(req) on a goroutine of its own.
func goRoundTrip(tr http.RoundTripper, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		ch <- result{resp, err}
	}()
	return ch
}

// readResult is what reading a body whole gave.
type readResult struct {
	body []byte
	err  error
}

// goReadAll reads r to its end (or error) on a goroutine of its own.
func goReadAll(r io.Reader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- readResult{b, err}
	}()
	return ch
}

// roundTrip sends req and returns the answer with its body read whole;
// any error, or a RoundTrip or read that takes over testTimeout, fails
// the test.
func roundTrip(t testing.TB, tr http.RoundTripper, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res := recv(t, goRoundTrip(tr, req), "RoundTrip "+req.Method+" "+req.URL.String())
	if res.err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, res.err)
	}
	defer res.resp.Body.Close()
	rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
	if rr.err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL, rr.err)
	}
	return res.resp, rr.body
}

// recv returns the next value from ch, failing the test after
// testTimeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		panic("unreachable")
	}
}

// signal sends on a buffered channel without blocking (a handler's
// report that nobody may be waiting for any more).
func signal[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// randomBytes returns n bytes of a fixed pseudo-random sequence.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'h', '2', 'c', seed})
	_, _ = r.Read(b)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cancelWay is one way a test cancels a request: its context, or the
// abort channel of RoundTripAbort.
type cancelWay struct {
	name string
	// start returns the round tripper to use on tr, the request's
	// context, and the function that cancels the request.
	start func(t testing.TB, tr *h2client.Transport) (http.RoundTripper, context.Context, func())
}

var cancelWays = []cancelWay{
	{"context", func(t testing.TB, tr *h2client.Transport) (http.RoundTripper, context.Context, func()) {
		ctx, cancel := context.WithCancel(testContext(t))
		t.Cleanup(cancel)
		return tr, ctx, cancel
	}},
	{"abort", func(t testing.TB, tr *h2client.Transport) (http.RoundTripper, context.Context, func()) {
		ch := make(chan struct{})
		var once sync.Once
		return abortTripper{tr, ch}, testContext(t), func() { once.Do(func() { close(ch) }) }
	}},
}

// abortTripper round-trips with RoundTripAbort and its channel.
type abortTripper struct {
	tr    *h2client.Transport
	abort <-chan struct{}
}

func (a abortTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return a.tr.RoundTripAbort(req, a.abort)
}
