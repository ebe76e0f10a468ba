package forward

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// Proto is the protocol a request came in over.
type Proto uint8

// Protocols.
const (
	HTTP1 Proto = iota // HTTP/1.1 (fasthttp)
	HTTP2              // HTTP/2, not gRPC (net/http)
	GRPC               // gRPC over HTTP/2 (net/http)
)

// Request is one client request as the core sees it, whatever protocol
// carried it. A frontend fills it from its own request object, borrowing
// that memory (valid until Exchange.Finish), and hands it to
// Core.Forward. Header lookups take canonical names ("X-Request-Id").
//
// The frontend's own request stays reachable (SetHTTP1, SetHTTP2) so that
// the upstream exchange encodes it once, without an intermediate copy: an
// HTTP/1.1 request goes to an HTTP node as it is; an HTTP/2 request's
// fields are written straight into the pooled upstream request, or relayed
// as fields to a gRPC node.
type Request struct {
	Proto  Proto
	Method []byte
	// Path is the path without the query; URI the request target as
	// received (path and query).
	Path []byte
	URI  []byte
	Host []byte
	// Body is the whole body when the frontend read it; BodyStream the
	// body still arriving (a large HTTP/1.1 body, a gRPC stream). At most
	// one is set.
	Body       []byte
	BodyStream io.Reader
	// Ctx is done when the client goes away; nil when the frontend cannot
	// tell.
	Ctx context.Context
	// Err is a protocol-level problem the frontend found (a framing
	// conflict, an unreadable or oversized body): the core answers it.
	Err error
	// Start is when the frontend received the request (zero: now).
	Start time.Time

	h1     *fasthttp.Request
	h2     *http.Request
	fields []hpack.HeaderField // h2's header fields (names in lower case)
	ip     [16]byte
	ipLen  uint8
	ipText []byte // the client address as text, for X-Forwarded-For
	tls    bool
}

// SetHTTP1 makes req (fasthttp's, valid until Finish) the request's
// carrier; tls says the client connection is TLS.
func (r *Request) SetHTTP1(req *fasthttp.Request, tls bool) { r.h1, r.tls = req, tls }

// SetHTTP2 fills the view from req (the HTTP/2 server's request, which
// stays the carrier) and fields, its header fields as they came (names
// in lower case: the server builds no header map; the core may change
// them): protocol (gRPC when grpc), method, path, target, host and the
// client's context. The body is the frontend's to set.
func (r *Request) SetHTTP2(req *http.Request, fields []hpack.HeaderField, grpc bool) {
	r.h2, r.fields = req, fields
	r.Proto = HTTP2
	if grpc {
		r.Proto = GRPC
	}
	r.Method, r.Path, r.URI, r.Host = bytesOf(req.Method), bytesOf(req.URL.Path), bytesOf(req.RequestURI), bytesOf(req.Host)
	if len(r.URI) == 0 {
		r.URI = r.Path
	}
	r.Ctx = req.Context()
}

// SetClientAddr records the client's address: ip as bytes (4 or 16) and
// text (nil: formatted here). Both are copied, so a frontend may pass
// per-connection memory.
func (r *Request) SetClientAddr(a netip.Addr, text []byte) {
	if !a.IsValid() || a.IsUnspecified() {
		r.ipLen = 0
		r.ipText = r.ipText[:0]
		return
	}
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		copy(r.ip[:], v[:])
		r.ipLen = 4
	} else {
		v := a.As16()
		r.ip = v
		r.ipLen = 16
	}
	if text == nil {
		r.ipText = a.AppendTo(r.ipText[:0])
		return
	}
	r.ipText = append(r.ipText[:0], text...)
}

func (r *Request) reset() {
	*r = Request{ipText: r.ipText[:0]}
}

// Header returns the value of the header with the canonical name (as
// net/textproto.CanonicalMIMEHeaderKey writes it; servers normalise
// incoming names so), nil when absent. The result aliases the request and
// must not be modified.
func (r *Request) Header(name []byte) []byte {
	if r.h1 != nil {
		return r.h1.Header.PeekCanonical(name)
	}
	if r.h2 != nil {
		for i := range r.fields {
			if fieldIs(r.fields[i].Name, name) {
				return bytesOf(r.fields[i].Value)
			}
		}
	}
	return nil
}

// fieldIs reports whether the lower-case field name is the canonical
// header name canon.
func fieldIs(name string, canon []byte) bool {
	if len(name) != len(canon) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := canon[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if name[i] != c {
			return false
		}
	}
	return true
}

// Client timeout headers: gRPC's own, and one for HTTP clients.
var (
	keyGRPCTimeout = []byte("Grpc-Timeout")
	// keyTimeout is how long an HTTP client will wait, in seconds
	// (decimals allowed: "2.5"), as LiteLLM's x-litellm-timeout is. It
	// bounds the request's wait in the route's queue (queue.timeout,
	// queue.batch_timeout): a client that gives up sooner gets its 503
	// with Retry-After while it still listens.
	keyTimeout = []byte("X-Switchyard-Timeout")
)

// ClientTimeout returns how long the client will wait for the request:
// its grpc-timeout (a gRPC call: 1 to 8 digits and a unit, H M S m u n,
// as the gRPC over HTTP/2 protocol defines it) or its X-Switchyard-Timeout
// (any other request: seconds); ok is false when it sets none. A
// malformed value is an ErrBadRequest naming the header.
func (r *Request) ClientTimeout() (d time.Duration, ok bool, err error) {
	if r.Proto == GRPC {
		if v := r.Header(keyGRPCTimeout); v != nil {
			d, err = parseGRPCTimeout(v)
			return d, err == nil, err
		}
		return 0, false, nil
	}
	v := r.Header(keyTimeout)
	if v == nil {
		return 0, false, nil
	}
	s, perr := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
	if perr != nil || !(s > 0) || math.IsInf(s, 0) {
		return 0, false, fmt.Errorf("%w: %s %q: want a positive number of seconds", ErrBadRequest, keyTimeout, v)
	}
	return time.Duration(min(s, maxClientTimeout.Seconds()) * float64(time.Second)), true, nil
}

// maxClientTimeout caps a client's timeout (longer than any route's
// queue deadline, and far from time.Duration's range).
const maxClientTimeout = 1000 * time.Hour

// parseGRPCTimeout reads a grpc-timeout value ("500m", "2S").
func parseGRPCTimeout(v []byte) (time.Duration, error) {
	bad := func() error {
		return fmt.Errorf("%w: %s %q: want 1 to 8 digits and a unit (H, M, S, m, u, n)", ErrBadRequest, keyGRPCTimeout, v)
	}
	if len(v) < 2 || len(v) > 9 {
		return 0, bad()
	}
	var n time.Duration
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, bad()
		}
		n = n*10 + time.Duration(c-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, bad()
	}
	if n > maxClientTimeout/unit {
		return maxClientTimeout, nil // 99999999H would overflow
	}
	return n * unit, nil
}

// Cookie returns the value of the cookie named name, nil when absent.
func (r *Request) Cookie(name []byte) []byte {
	if r.h1 != nil {
		return r.h1.Header.CookieBytes(name)
	}
	if r.h2 != nil {
		for _, f := range r.fields {
			if f.Name != "cookie" {
				continue
			}
			if v := cookieValue(bytesOf(f.Value), name); v != nil {
				return v
			}
		}
	}
	return nil
}

// cookieValue finds name in a Cookie header line ("a=1; b=2").
func cookieValue(line, name []byte) []byte {
	for len(line) > 0 {
		var pair []byte
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			pair, line = line[:i], line[i+1:]
		} else {
			pair, line = line, nil
		}
		pair = bytes.TrimSpace(pair)
		k, v, ok := bytes.Cut(pair, []byte{'='})
		if ok && bytes.Equal(k, name) {
			return bytes.Trim(v, `"`)
		}
	}
	return nil
}

// ClientIP returns the client's address as 4 or 16 bytes, nil when
// unknown.
func (r *Request) ClientIP() []byte {
	if r.ipLen == 0 {
		return nil
	}
	return r.ip[:r.ipLen]
}

// CopyTo writes the request into a shadow copy (shadow.Request).
func (r *Request) CopyTo(c *shadow.Copy) shadow.BodyState {
	c.GRPC = r.Proto == GRPC
	c.Method = append(c.Method[:0], r.Method...)
	c.URI = append(c.URI[:0], r.URI...)
	c.Host = append(c.Host[:0], r.Host...)
	switch {
	case r.h1 != nil:
		for k, v := range r.h1.Header.All() {
			if !hopHeader(k) {
				c.AddHeader(k, v)
			}
		}
	case r.h2 != nil:
		for _, f := range r.fields {
			if !hopHeader(bytesOf(f.Name)) {
				c.AddHeader(bytesOf(f.Name), bytesOf(f.Value))
			}
		}
	}
	if r.BodyStream != nil {
		return shadow.BodyLater
	}
	if !c.SetBody(r.Body) {
		return shadow.BodyTooLarge
	}
	return shadow.BodyCopied
}

// bytesOf views s as bytes without copying. The result must never be
// modified: callers only read it (header values handed out read-only).
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// hopHeaders are the hop-by-hop headers never forwarded (RFC 9110
// §7.6.1), plus Expect (the gateway already read the body).
var hopHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"}

// hopHeader reports whether k (any case) is a hop-by-hop header.
func hopHeader(k []byte) bool {
	switch len(k) {
	case 2, 6, 7, 10, 16, 17:
	default:
		return false
	}
	for _, h := range hopHeaders {
		if len(h) == len(k) && bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

// traceCarrier adapts a request to OTel propagation: traceparent is read
// from the client's headers and rewritten there, so the node continues the
// trace under the gateway's span. Used only with tracing on.
type traceCarrier struct{ r *Request }

func (c traceCarrier) Get(key string) string {
	return string(c.r.Header([]byte(http.CanonicalHeaderKey(key))))
}

func (c traceCarrier) Set(key, value string) {
	switch {
	case c.r.h1 != nil:
		c.r.h1.Header.Set(key, value)
	case c.r.h2 != nil:
		name := strings.ToLower(key)
		for i := range c.r.fields {
			if c.r.fields[i].Name == name { // replaces every value, as http.Header.Set
				c.r.fields[i].Value = value
				rest := slices.DeleteFunc(c.r.fields[i+1:], func(f hpack.HeaderField) bool { return f.Name == name })
				c.r.fields = c.r.fields[:i+1+len(rest)]
				return
			}
		}
		c.r.fields = append(c.r.fields, hpack.HeaderField{Name: name, Value: value})
	}
}

func (c traceCarrier) Keys() []string {
	var keys []string
	switch {
	case c.r.h1 != nil:
		for k := range c.r.h1.Header.All() {
			keys = append(keys, string(k))
		}
	case c.r.h2 != nil:
		for _, f := range c.r.fields {
			keys = append(keys, f.Name)
		}
	}
	return keys
}
