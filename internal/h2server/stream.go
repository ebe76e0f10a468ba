package h2server

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/h2key"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its answer; it is the handler's
// http.ResponseWriter.
type stream struct {
	c      *conn
	id     uint32
	req    *http.Request
	reqBuf http.Request // req's storage, but for a request cut at MaxHeaderBytes
	urlBuf url.URL      // reqBuf's URL when its path is plain (plainPath)
	ctx    streamCtx    // the request's context: done when the stream ends

	// Receive side and windows, under c.mu.
	cond          sync.Cond // L is &c.mu; signalled on data, window and close
	body          []byte    // received, unread: body[off:]
	off           int
	bodyErr       error // what Read returns once body is drained
	recvDone      bool  // END_STREAM seen, or the stream ended
	reset         bool  // RST_STREAM sent or received, or the connection closed
	peerReset     bool  // the client sent RST_STREAM: its later frames are errors
	declared      int64 // content-length, -1 when absent
	received      int64
	recvAvail     int64 // what the client may still send on this stream
	recvUnacked   int64
	sendWindow    int64
	waitingWindow bool
	tooLarge      bool        // the header list was over MaxHeaderBytes: answered 431
	answerEnded   bool        // the frame ending the answer is written or about to be (releaseSlot)
	discard       bool        // the body's read deadline passed: what arrives is dropped
	trailer       http.Header // the request's trailers, until the handler's read sees EOF
	head          bool        // a HEAD request: the answer has no body

	// Answer side, the handler's goroutine only.
	header      http.Header
	status      int
	wroteHeader bool                 // WriteHeader called
	sentHeader  bool                 // HEADERS written
	ended       bool                 // END_STREAM written
	released    bool                 // the stream's slot was freed (releaseSlot)
	wbuf        *[]byte              // pooled, nil until the first Write
	trailerBuf  [4]hpack.HeaderField // trailers' room: a gRPC answer's fit, not allocated
	fields      []hpack.HeaderField  // the request's regular fields, as they came (RequestFields)
	fieldBuf    [8]hpack.HeaderField // fields' room: most requests' fit, not allocated
	own         []hpack.HeaderField  // AddField's, in ownBuf while they fit
	ownBuf      [4]hpack.HeaderField
	relayed     []hpack.HeaderField  // RelayFields' or RelayField's: sent after the header map's
	relayBuf    [4]hpack.HeaderField // RelayField's room: a usual HTTP/1.1 answer's fit (date, server, content-type and -length)
	relayOwned  bool                 // relayed is the stream's (RelayField), not the caller's
	relayedTr   []hpack.HeaderField  // RelayTrailerFields: sent after the map's trailers
	readTimer   *time.Timer          // under c.mu: the watchdog sets deadlines from its own goroutine
}

func newStream(c *conn, id uint32) *stream {
	st := &stream{c: c, id: id, declared: -1, recvAvail: int64(c.srv.streamWindow())}
	st.cond.L = &c.mu
	// st.ctx is under no connection context: the connection cancels its
	// open streams itself (end), so a stream costs no registration with
	// a parent that every stream of the connection shares.
	return st
}

// readRequest builds the http.Request from the HEADERS block; an error
// is the request's fault (a PROTOCOL_ERROR reset).
func (st *stream) readRequest(f *http2.MetaHeadersFrame) error {
	var method, path, scheme, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		default: // :protocol: extended CONNECT is not offered
			return errors.New("unsupported pseudo-header " + hf.Name)
		}
	}
	connect := method == "CONNECT"
	switch {
	case connect && (path != "" || scheme != "" || authority == ""):
		return errors.New("malformed CONNECT request")
	case !connect && (method == "" || path == "" || scheme == ""):
		return errors.New("missing :method, :scheme or :path")
	case !connect && path[0] != '/' && !(path == "*" && method == "OPTIONS"):
		return errors.New("invalid :path")
	case !httpguts.ValidHeaderFieldName(method): // a token (RFC 9110 §9.1), as a request line needs
		return errors.New("invalid :method")
	}
	regular := f.RegularFields()
	// The decoder's fields are its own until the next frame.
	st.fields = append(st.fieldBuf[:0:len(st.fieldBuf)], regular...)
	var host, trailer []string
	for _, hf := range regular {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return errors.New("connection-specific header " + hf.Name)
		case "te":
			if hf.Value != "trailers" {
				return errors.New(`te other than "trailers"`)
			}
		case "content-length":
			if st.declared >= 0 && strconv.FormatInt(st.declared, 10) != hf.Value {
				return errors.New("conflicting content-length")
			}
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil {
				return errors.New("invalid content-length")
			}
			st.declared = int64(n)
		case "host":
			host = append(host, hf.Value)
		case "trailer":
			trailer = append(trailer, hf.Value)
		}
	}
	var h http.Header
	if !st.c.srv.NoHeaderMap {
		h = st.headerMap(regular)
	}
	if f.StreamEnded() && st.declared > 0 {
		return errors.New("content-length with no body")
	}
	var u *url.URL
	switch {
	case connect:
		u = &url.URL{Host: authority}
		path = authority
	case plainPath(path):
		st.urlBuf = url.URL{Path: path}
		u = &st.urlBuf
	default:
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return errors.New("invalid :path")
		}
	}
	if authority == "" && len(host) > 0 {
		authority = host[0]
	}
	var body io.ReadCloser = http.NoBody
	length := int64(0)
	if !f.StreamEnded() {
		body = requestBody{st}
		length = st.declared // -1: unknown
	}
	var tr http.Header
	for _, v := range trailer {
		for k := range strings.SplitSeq(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			if k != "" && httpguts.ValidTrailerHeader(k) {
				if tr == nil {
					tr = make(http.Header)
				}
				tr[k] = nil
			}
		}
	}
	var zero http.Request
	st.reqBuf = *zero.WithContext(&st.ctx) // WithContext is inlined: its copy stays on the stack
	r := &st.reqBuf
	r.Method = method
	r.URL = u
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header = h
	r.Body = body
	r.ContentLength = length
	r.Host = authority
	r.RemoteAddr = st.c.remoteAddr
	r.RequestURI = path
	r.TLS = st.c.tls
	r.Trailer = tr
	st.req = r
	st.head = method == http.MethodHead
	return nil
}

// plainPath reports whether path is an origin-form target that
// url.ParseRequestURI would return as URL{Path: path}: a '/' and then
// only the bytes that Go's path encoding leaves as they are (no query,
// no percent-escape, nothing it would re-escape into RawPath).
func plainPath(path string) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	for i := 1; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	return true
}

// plainPathByte: RFC 3986's unreserved bytes and the reserved ones Go's
// path encoding keeps ($ & + , / : ; = @).
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// headerMap is the request's fields as a header map with canonical keys,
// cookie crumbs joined (RFC 9113 §8.2.3), all values in one backing array.
func (st *stream) headerMap(regular []hpack.HeaderField) http.Header {
	h := make(http.Header, len(regular))
	vals := make([]string, len(regular))
	var cookies []string
	for i, hf := range regular {
		if hf.Name == "cookie" {
			cookies = append(cookies, hf.Value)
			continue
		}
		key := st.c.canonicalKey(hf.Name)
		vals[i] = hf.Value
		if prev := h[key]; prev != nil {
			h[key] = append(prev, hf.Value)
		} else {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	if len(cookies) > 0 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	return h
}

// minimalRequest stands in for a request whose header list was cut at
// MaxHeaderBytes and lacks what a request needs.
func (st *stream) minimalRequest() {
	var zero http.Request
	r := zero.WithContext(&st.ctx)
	r.Method, r.URL, r.RequestURI = http.MethodGet, &url.URL{Path: "/"}, "/"
	r.Proto, r.ProtoMajor = "HTTP/2.0", 2
	if !st.c.srv.NoHeaderMap {
		r.Header = make(http.Header)
	}
	r.Body = http.NoBody
	r.RemoteAddr = st.c.remoteAddr
	r.TLS = st.c.tls
	st.req = r
	st.declared = -1
}

// canonicalKey returns the canonical form of a lower-case wire name,
// remembering recent ones (reader only).
func (c *conn) canonicalKey(name string) string { return h2key.Canonical(name, c.canon) }

// addTrailers records the request's trailers (reader only, before the
// body ends); the handler sees them in r.Trailer once its body read hit
// EOF, as with net/http (the map is not written while the handler may
// read it).
func (st *stream) addTrailers(fields []hpack.HeaderField) {
	if st.req == nil {
		return // answered 431 without reading the request
	}
	tr := make(http.Header, len(fields))
	for _, hf := range fields {
		k := st.c.canonicalKey(hf.Name)
		tr[k] = append(tr[k], hf.Value)
	}
	st.c.mu.Lock()
	st.trailer = tr
	st.c.mu.Unlock()
}

// requestBody is a request's body: what the client sent, as it arrives.
type requestBody struct{ st *stream }

func (b requestBody) Read(p []byte) (int, error) {
	st, c := b.st, b.st.c
	c.mu.Lock()
	for st.off == len(st.body) && st.bodyErr == nil {
		st.cond.Wait()
	}
	if st.off == len(st.body) {
		err := st.bodyErr
		tr := st.trailer
		st.trailer = nil
		c.mu.Unlock()
		if tr != nil && err == io.EOF {
			if st.req.Trailer == nil {
				st.req.Trailer = make(http.Header, len(tr))
			}
			for k, v := range tr {
				st.req.Trailer[k] = v
			}
		}
		return 0, err
	}
	n := copy(p, st.body[st.off:])
	st.off += n
	// The window comes back as the handler reads: a stream that is not
	// read stops its client once its window is spent.
	c.refundLocked(int64(n))
	var streamInc int64
	if !st.recvDone {
		st.recvUnacked += int64(n)
		if st.recvUnacked >= int64(c.srv.streamWindow())/2 {
			streamInc, st.recvUnacked = st.recvUnacked, 0
			st.recvAvail += streamInc
		}
	}
	c.mu.Unlock()
	if streamInc > 0 {
		c.writeWindowUpdate(st.id, uint32(streamInc))
	}
	c.sendRefund()
	return n, nil
}

// Close does nothing: what the handler leaves unread is discarded when it
// returns.
func (requestBody) Close() error { return nil }

// serve runs the handler and ends the stream (on a worker).
func (st *stream) serve() {
	defer st.finish()
	if st.tooLarge {
		if h := st.c.srv.HeaderTooLarge; h != nil {
			h.ServeHTTP(st, st.req)
			return
		}
		st.Header().Set("Content-Type", "text/plain; charset=utf-8")
		st.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		_, _ = io.WriteString(st, "request headers too large\n")
		return
	}
	st.c.srv.Handler.ServeHTTP(st, st.req)
}

// finish completes the answer (or resets the stream after a panic) and
// releases the stream.
func (st *stream) finish() {
	c := st.c
	// The stream's slot is freed just before the frame that ends the
	// stream is written (releaseSlot): a client that opens its next
	// stream as soon as one ends must not be refused, and a stream whose
	// answer waits for the client's window still holds its slot.
	if p := recover(); p != nil {
		if p != http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
			c.srv.logger().Error("h2server: handler panic", "panic", p, "stack", string(debug.Stack()))
		}
		c.releaseSlot(st)
		c.resetStream(st, http2.ErrCodeInternal)
	} else if err := st.end(); err == nil {
		c.mu.Lock()
		early := !st.recvDone && !st.reset
		c.mu.Unlock()
		if early {
			// The answer is complete before the request: the client may
			// stop sending (RFC 9113 §8.1).
			c.resetStream(st, http2.ErrCodeNo)
		}
	}
	c.mu.Lock()
	if st.readTimer != nil {
		st.readTimer.Stop()
	}
	c.mu.Unlock()
	st.ctx.cancel()
	st.releaseBuf()
	c.releaseSlot(st) // if no frame ended the stream (a failed write)
	if c.srv.afterAnswer != nil {
		c.srv.afterAnswer()
	}
	c.streamDone(st)
}

// FieldRelay is what the server's http.ResponseWriter offers a proxy
// beyond net/http's interfaces: the request's fields and the client's
// address as the server has them, and a way to send the fields of the
// answer it relays as its node sent them, instead of copying them into
// the header map. Relayed slices are read when the headers and the
// trailers are written, which may be after the handler returns (an
// answer's last frames go out then), so they must not change until the
// stream ends.
type FieldRelay interface {
	// ClientAddr is the client's address, as Request.RemoteAddr gives it
	// but parsed once per connection (zero when not an IP address).
	ClientAddr() netip.AddrPort
	// RequestFields returns the request's fields as they came (names in
	// lower case, pseudo-headers left out; with Server.NoHeaderMap the
	// only copy of them). The handler may change them; they are the
	// stream's until the handler returns.
	RequestFields() []hpack.HeaderField
	// AddField adds a header field of the proxy's own to the answer (name
	// in lower case), with no header map: it is sent with the map's
	// keys, and wins over relayed fields as they do. Call it before
	// WriteHeader.
	AddField(name, value string)
	// RelayFields adds fields (names in lower case) to the answer's
	// headers. The header map's keys and AddField's come first and win:
	// a field whose name they have too is not sent. Connection-specific
	// fields are not sent, nor invalid values. It replaces what was
	// relayed before. Call it before WriteHeader.
	RelayFields(fields []hpack.HeaderField)
	// RelayField adds one field (name in lower case) to the relayed ones,
	// with the same rules; the stream keeps it, so the caller needs no
	// slice that outlives the handler. Call it before WriteHeader.
	RelayField(name, value string)
	// RelayTrailerFields adds fields (names in lower case) to the
	// answer's trailers, after the map's. Call it before the handler
	// returns.
	RelayTrailerFields(fields []hpack.HeaderField)
}

func (st *stream) RequestFields() []hpack.HeaderField { return st.fields }
func (st *stream) ClientAddr() netip.AddrPort         { return st.c.clientAddr }
func (st *stream) RelayFields(fields []hpack.HeaderField) {
	st.relayed, st.relayOwned = fields, false
}

func (st *stream) RelayField(name, value string) {
	if !st.relayOwned {
		// The caller's slice from RelayFields, if any, is copied, never
		// appended to.
		st.relayed = append(st.relayBuf[:0:len(st.relayBuf)], st.relayed...)
		st.relayOwned = true
	}
	st.relayed = append(st.relayed, hpack.HeaderField{Name: name, Value: value})
}

func (st *stream) AddField(name, value string) {
	if st.own == nil {
		st.own = st.ownBuf[:0]
	}
	st.own = append(st.own, hpack.HeaderField{Name: name, Value: value})
}
func (st *stream) RelayTrailerFields(fields []hpack.HeaderField) { st.relayedTr = fields }

// http.ResponseWriter, http.Flusher and what http.ResponseController
// looks for.

func (st *stream) Header() http.Header {
	if st.header == nil {
		st.header = make(http.Header)
	}
	return st.header
}

func (st *stream) WriteHeader(code int) {
	if st.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h2server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		return // informational answers are not passed on
	}
	st.wroteHeader = true
	st.status = code
}

func (st *stream) Write(p []byte) (int, error) {
	if !st.wroteHeader {
		st.WriteHeader(http.StatusOK)
	}
	if st.head || len(p) == 0 {
		return len(p), nil
	}
	if st.ended {
		return 0, errStreamReset
	}
	if st.wbuf == nil {
		st.wbuf = bufPool.Get().(*[]byte)
	}
	if b := *st.wbuf; len(b)+len(p) <= cap(b) {
		*st.wbuf = append(b, p...)
		return len(p), st.writeErr()
	}
	if err := st.flush(false); err != nil {
		return 0, err
	}
	if len(p) <= bufSize/2 {
		if st.wbuf == nil {
			st.wbuf = bufPool.Get().(*[]byte)
		}
		*st.wbuf = append(*st.wbuf, p...)
		return len(p), nil
	}
	if err := st.writeData(p, false, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (st *stream) WriteString(s string) (int, error) {
	return st.Write([]byte(s)) // rare on this server's paths
}

// writeErr reports why the stream can no longer be written, nil if it
// can.
func (st *stream) writeErr() error {
	c := st.c
	c.mu.Lock()
	reset := st.reset
	c.mu.Unlock()
	if reset {
		return errStreamReset
	}
	return nil
}

func (st *stream) Flush() { _ = st.FlushError() }

// FlushError sends what was written so far.
func (st *stream) FlushError() error {
	if !st.wroteHeader {
		st.WriteHeader(http.StatusOK)
	}
	return st.flush(false)
}

// SetReadDeadline bounds the wait for the rest of the request body: past
// t, reads fail with os.ErrDeadlineExceeded and the stream is reset.
func (st *stream) SetReadDeadline(t time.Time) error {
	c := st.c
	c.mu.Lock()
	if st.readTimer != nil {
		st.readTimer.Stop()
		st.readTimer = nil
	}
	d := time.Until(t)
	if !t.IsZero() && d > 0 {
		st.readTimer = time.AfterFunc(d, func() { c.expireBody(st) })
	}
	c.mu.Unlock()
	if !t.IsZero() && d <= 0 {
		c.expireBody(st)
	}
	return nil
}

// SetWriteDeadline is not supported: writes are bounded by WriteTimeout.
func (st *stream) SetWriteDeadline(time.Time) error { return http.ErrNotSupported }

// EnableFullDuplex is a no-op: HTTP/2 requests and answers are always
// full duplex.
func (st *stream) EnableFullDuplex() error { return nil }

// end writes what is left of the answer with END_STREAM: the headers if
// not sent, buffered data, trailers.
func (st *stream) end() error {
	if st.ended {
		return nil
	}
	if !st.wroteHeader {
		st.WriteHeader(http.StatusOK)
	}
	return st.flush(true)
}

// flush writes the headers if not sent yet and the buffered data; with
// end, the trailers and END_STREAM too.
func (st *stream) flush(end bool) error {
	if err := st.writeErr(); err != nil {
		return err
	}
	var trailers []hpack.HeaderField
	if end {
		trailers = st.trailers()
	}
	var data []byte
	if st.wbuf != nil {
		data = *st.wbuf
	}
	endWithData := end && len(trailers) == 0
	if !st.sentHeader {
		endWithHeaders := endWithData && len(data) == 0
		more := len(data) > 0 || len(trailers) > 0 // written right after: one flush
		if err := st.writeHeaders(end && !st.hasLength(), len(data), endWithHeaders, !more); err != nil {
			return err
		}
		st.sentHeader = true
		if endWithHeaders {
			st.ended = true
			return nil
		}
	}
	if len(data) > 0 || endWithData {
		if err := st.writeData(data, endWithData, len(trailers) == 0); err != nil {
			return err
		}
		// A streamed answer holds no buffer between its writes (4 KiB
		// of each open stream's memory otherwise).
		st.releaseBuf()
	}
	if len(trailers) > 0 {
		if err := st.writeTrailers(trailers); err != nil {
			return err
		}
	}
	if end {
		st.ended = true
	}
	return nil
}

func (st *stream) hasLength() bool {
	if _, ok := st.header["Content-Length"]; ok {
		return true
	}
	for _, f := range st.relayed {
		if f.Name == "content-length" {
			return true
		}
	}
	return false
}

// trailers collects the answer's trailers: keys declared in the Trailer
// header and keys with http.TrailerPrefix.
func (st *stream) trailers() []hpack.HeaderField {
	out := st.trailerBuf[:0]
	for _, v := range st.header["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			for _, val := range st.header[k] {
				out = append(out, hpack.HeaderField{Name: strings.ToLower(k), Value: val})
			}
		}
	}
	for k, vv := range st.header {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := h2key.Wire(k[len(http.TrailerPrefix):], nil)
		if name == "" {
			continue
		}
		for _, v := range vv {
			out = append(out, hpack.HeaderField{Name: name, Value: v})
		}
	}
	return append(out, st.relayedTr...)
}

// releaseBuf returns the answer buffer to the pool.
func (st *stream) releaseBuf() {
	if st.wbuf != nil {
		*st.wbuf = (*st.wbuf)[:0]
		bufPool.Put(st.wbuf)
		st.wbuf = nil
	}
}

// bufSize is the answer buffer: an answer that fits goes out in one
// write with its headers and END_STREAM.
const bufSize = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}
