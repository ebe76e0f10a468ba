package shadow

import (
	"context"
	"errors"
	"fmt"
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

// HTTPSender sends shadow copies to a fixed base URL over a fasthttp
// HostClient. It honours ctx: on cancellation (Close of the Mirror) it
// closes its connections so in-flight requests return at once, and it
// never waits beyond ctx's deadline. Safe for concurrent use; must not be
// copied.
type HTTPSender struct {
	_ noCopy

	// immutable after NewHTTPSender
	client *fasthttp.HostClient
	scheme string
	host   string
	prefix string

	mu    sync.Mutex // guards conns
	conns map[*trackedConn]struct{}
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
		scheme: scheme,
		host:   host,
		prefix: strings.TrimSuffix(string(u.Path()), "/"),
		conns:  map[*trackedConn]struct{}{},
	}
	addr := host
	if !strings.Contains(addr, ":") || strings.HasSuffix(addr, "]") {
		if scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout}
	s.client = &fasthttp.HostClient{
		Addr:                addr,
		IsTLS:               scheme == "https",
		MaxConns:            cfg.MaxConns,
		MaxResponseBodySize: cfg.MaxResponseBytes,
		// The connection-level deadlines come from DoDeadline.
		Dial: func(a string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", a)
			if err != nil {
				return nil, err
			}
			tc := &trackedConn{Conn: c, s: s}
			s.mu.Lock()
			s.conns[tc] = struct{}{}
			s.mu.Unlock()
			return tc, nil
		},
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
		deadline = time.Now().Add(DefaultTimeout)
	}
	// Cancellation (not the deadline, which DoDeadline enforces) closes the
	// connections so a hanging shadow cannot hold Close. The Mirror counts
	// a send cut this way by its own context, so closing a sibling's
	// connection too is harmless: cancellation only comes from Close.
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			s.CloseConns()
		}
	})
	err := s.client.DoDeadline(req, resp, deadline)
	stop()
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

// CloseConns closes every open connection, idle or busy.
func (s *HTTPSender) CloseConns() {
	s.mu.Lock()
	cs := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// Close closes every connection. The sender stays usable (new
// connections are dialled on demand).
func (s *HTTPSender) Close() error {
	s.client.CloseIdleConnections()
	s.CloseConns()
	return nil
}

type trackedConn struct {
	net.Conn
	s    *HTTPSender
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// noCopy makes go vet's copylocks check flag copies.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
