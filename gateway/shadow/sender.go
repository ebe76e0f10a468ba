package shadow

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Sender sends one shadow copy to the shadow target. The gateway's
// forwarding core implements it (the target is a route or model of the
// gateway, reached over the protocol of the copy); NewHTTPSender is a
// default for a fixed base URL.
//
// Timing contract: Send runs on a Mirror worker goroutine, never on the
// request path. It must return when ctx is done: ctx carries
// Config.Timeout as its deadline and is cancelled by Close. c and a are
// owned by the Mirror and valid only during the call; Send must not keep
// them. c holds a copy of the client's request (protocol, method, target
// with path and query, headers, body of at most Config.MaxBodyBytes) with
// the marker header set; Send chooses the address. Send reads the whole
// response into a, keeping at most Config.MaxResponseBytes of the body
// (Answer.SetBody).
type Sender interface {
	Send(ctx context.Context, target string, c *Copy, a *Answer) error
}

// HTTPSenderConfig configures NewHTTPSender.
type HTTPSenderConfig struct {
	// BaseURL is the shadow's scheme and host, with an optional path
	// prefix, e.g. http://127.0.0.1:8001 (required).
	BaseURL string
	// MaxConns bounds the connections to the shadow (default 64).
	MaxConns int
	// MaxResponseBytes bounds a response body; a larger one fails with
	// fasthttp.ErrBodyTooLarge (default DefaultMaxResponseBytes).
	MaxResponseBytes int
	// DialTimeout bounds connecting (default 3s).
	DialTimeout time.Duration
}

// idleTimeout is how long an idle connection is kept for reuse.
const idleTimeout = 10 * time.Second

// HTTPSender sends shadow copies to a fixed base URL over HTTP/1.1 with
// keep-alive connections of its own. Each request owns its connection
// while it runs: the request's ctx ending (its deadline, or Close of the
// Mirror) closes that connection and no other, so a cancelled send
// returns at once and its siblings go on. Safe for concurrent use; must
// not be copied.
type HTTPSender struct {
	_ noCopy

	// immutable after NewHTTPSender
	scheme, host, prefix string
	addr                 string
	maxResponse          int
	dialer               *net.Dialer
	tls                  *tls.Config // nil for http
	slots                chan struct{}

	mu   sync.Mutex // guards idle
	idle []*senderConn
}

// senderConn is one connection to the shadow with its buffers.
type senderConn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	last time.Time // when it went idle
}

var _ Sender = (*HTTPSender)(nil)

// NewHTTPSender returns a Sender for cfg.BaseURL.
func NewHTTPSender(cfg HTTPSenderConfig) (*HTTPSender, error) {
	var u fasthttp.URI
	if err := u.Parse(nil, []byte(cfg.BaseURL)); err != nil {
		return nil, fmt.Errorf("shadow: base URL %q: %w", cfg.BaseURL, err)
	}
	scheme, host := string(u.Scheme()), string(u.Host())
	if (scheme != "http" && scheme != "https") || host == "" || !strings.Contains(cfg.BaseURL, "://") {
		return nil, fmt.Errorf("shadow: base URL %q: want http://host[:port][/prefix]", cfg.BaseURL)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	s := &HTTPSender{
		scheme:      scheme,
		host:        host,
		prefix:      strings.TrimSuffix(string(u.Path()), "/"),
		addr:        host,
		maxResponse: cfg.MaxResponseBytes,
		dialer:      &net.Dialer{Timeout: cfg.DialTimeout},
		slots:       make(chan struct{}, cfg.MaxConns),
	}
	if !strings.Contains(s.addr, ":") || strings.HasSuffix(s.addr, "]") {
		if scheme == "https" {
			s.addr += ":443"
		} else {
			s.addr += ":80"
		}
	}
	if scheme == "https" {
		name, _, err := net.SplitHostPort(s.addr)
		if err != nil {
			return nil, fmt.Errorf("shadow: base URL %q: %w", cfg.BaseURL, err)
		}
		s.tls = &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// Send implements Sender for HTTP copies (gRPC copies are refused).
func (s *HTTPSender) Send(ctx context.Context, _ string, c *Copy, a *Answer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.GRPC {
		return errors.New("shadow: HTTPSender sends HTTP copies only")
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethodBytes(c.Method)
	req.SetRequestURIBytes(c.URI)
	c.Headers(func(k, v []byte) { req.Header.AddBytesKV(k, v) })
	req.SetBodyRaw(c.Body)
	uri := req.URI()
	if s.prefix != "" {
		uri.SetPath(s.prefix + string(uri.Path()))
	}
	uri.SetScheme(s.scheme)
	uri.SetHost(s.host)
	req.SetHost(s.host)
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("shadow: send: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	err := s.do(ctx, deadline, req, resp)
	if err == errStaleConn { // a kept connection the shadow had closed: once more on a new one
		err = s.do(ctx, deadline, req, resp)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("shadow: send: %w (%w)", cerr, err)
		}
		return fmt.Errorf("shadow: send: %w", err)
	}
	a.Status = resp.StatusCode()
	a.ContentType = append(a.ContentType[:0], resp.Header.ContentType()...)
	a.SetBody(resp.Body())
	return nil
}

// errStaleConn: a reused connection failed before any byte of the
// answer (the shadow closed it while idle); the request may go again.
var errStaleConn = errors.New("shadow: stale connection")

// do runs one exchange on a connection of its own: ctx ending closes that
// connection (and only it), so the read or write in progress fails at
// once.
func (s *HTTPSender) do(ctx context.Context, deadline time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
	c, reused, err := s.conn(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	_ = c.SetDeadline(deadline)
	err = req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	wrote := err == nil
	if wrote {
		err = resp.ReadLimitBody(c.br, s.maxResponse)
	}
	if !stop() { // ctx ended: its AfterFunc closed c
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	if err != nil {
		_ = c.Close()
		// io.EOF: not one byte of the answer came (fasthttp reports any
		// failure of the first byte so).
		if reused && (!wrote || err == io.EOF) {
			return errStaleConn
		}
		return err
	}
	if resp.ConnectionClose() {
		_ = c.Close()
		return nil
	}
	s.putIdle(c)
	return nil
}

// conn returns an idle connection, or dials one; reused says which.
func (s *HTTPSender) conn(ctx context.Context) (c *senderConn, reused bool, err error) {
	now := time.Now()
	s.mu.Lock()
	for len(s.idle) > 0 {
		c = s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if now.Sub(c.last) < idleTimeout {
			s.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	s.mu.Unlock()
	nc, err := s.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, false, err
	}
	if s.tls != nil {
		tc := tls.Client(nc, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &senderConn{Conn: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}, false, nil
}

// putIdle keeps c for the next request.
func (s *HTTPSender) putIdle(c *senderConn) {
	_ = c.SetDeadline(time.Time{})
	c.last = time.Now()
	s.mu.Lock()
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

// Close closes the idle connections; busy ones belong to their requests
// (which end with their contexts). The sender stays usable: new
// connections are dialled on demand.
func (s *HTTPSender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
	return nil
}

// noCopy makes go vet's copylocks check flag copies.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
