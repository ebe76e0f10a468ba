package frontend

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/internal/h2key"
	"github.com/switchyard-dev/switchyard/internal/h2server"
)

// serveH2 translates an HTTP/2 stream into the core's view (a gRPC call
// keeps its body as a stream; any other request is read whole first, up
// to Limits.MaxBodyBytes, or refused unread when its content-length is
// over it), forwards it and writes the answer: a gRPC status for gRPC
// calls, trailers intact, and RST_STREAM when the node breaks a streamed
// answer.
func (s *Server) serveH2(w http.ResponseWriter, req *http.Request) {
	s.serveH2Request(w, req, nil)
}

// serveH2TooLarge answers a request whose header list is over
// Limits.MaxHeaderBytes, through the core (431, counted and logged as
// on HTTP/1.1); req holds what was decoded before the limit.
func (s *Server) serveH2TooLarge(w http.ResponseWriter, req *http.Request) {
	s.serveH2Request(w, req, forward.ErrHeaderTooLarge)
}

// serveH2Request is serveH2 for a request already known to fail with
// refused, when not nil: its body is not read.
func (s *Server) serveH2Request(w http.ResponseWriter, req *http.Request, refused error) {
	x := s.core.Acquire()
	defer func() {
		if p := recover(); p != nil {
			s.recoverH2(w, x, p)
		}
	}()
	relay := w.(h2server.FieldRelay)
	fields := relay.RequestFields()
	if testHook != nil {
		testHook([]byte(h2key.Value(fields, "x-test-panic")))
	}
	r := &x.Req
	r.Start = time.Now()
	grpc := strings.HasPrefix(h2key.Value(fields, "content-type"), "application/grpc")
	r.SetHTTP2(req, fields, grpc)
	if ap := relay.ClientAddr(); ap.IsValid() {
		r.SetClientAddr(ap.Addr(), nil)
	}
	var bp *[]byte
	x.BeginBody(w) // a body still arriving after Limits.ReadTimeout is cut
	if refused != nil {
		r.Err = refused
		x.EndBody()
	} else if grpc {
		r.BodyStream = req.Body // the core reads the first message, then ends the body phase
	} else {
		bp = bodyPool.Get().(*[]byte)
		if req.ContentLength > int64(s.lim.MaxBodyBytes) {
			// Declared over the limit: refused before any of it is
			// read (net/http resets the stream with NO_ERROR once the
			// answer is sent, so the client stops sending it).
			*bp, r.Err = (*bp)[:0], forward.ErrTooLarge
		} else {
			*bp, r.Err = readBody(req.Body, (*bp)[:0], s.lim.MaxBodyBytes, x)
		}
		r.Body = *bp
		x.EndBody()
	}
	s.forward(x)
	id := h2key.Value(fields, "x-request-id")
	if id == "" || x.RequestIDGenerated() {
		id = x.RequestIDString() // the string the node got too
	}
	var h http.Header
	if !x.Local() {
		// A relayed answer needs no header map: the gateway's own fields
		// go first and win over the node's of the same name.
		relay.AddField("x-request-id", id)
		if k, v := x.Variant(); k != nil {
			relay.AddField(strings.ToLower(string(k)), string(v))
		}
		if k, v := x.Fallback(); k != nil {
			relay.AddField(strings.ToLower(string(k)), string(v))
		}
	} else {
		h = w.Header()
		h["X-Request-Id"] = []string{id}
		if k, v := x.Variant(); k != nil {
			h.Set(string(k), string(v))
		}
		if k, v := x.Fallback(); k != nil {
			h.Set(string(k), string(v))
		}
	}
	var clientErr error
	switch {
	case x.Local():
		if ra := x.RetryAfter(); ra != nil {
			h.Set("Retry-After", string(ra))
		}
		if grpc {
			code, msg := x.GRPCStatus()
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", strconv.Itoa(int(code)))
			h.Set("Grpc-Message", url.PathEscape(msg))
			w.WriteHeader(http.StatusOK)
		} else {
			h.Set("Content-Type", x.LocalContentType())
			w.WriteHeader(x.Status())
			_, clientErr = w.Write(x.LocalBody())
		}
	case grpc:
		// The node's fields go as they came, after the gateway's own
		// (which win: X-Request-Id, the variant's).
		resp := x.GRPCResponse()
		relay.RelayFields(resp.Header)
		w.WriteHeader(resp.StatusCode)
		unary := forward.KnownUnaryGRPC(req.URL.Path)
		if !unary {
			// A streaming call's node may answer its headers and wait
			// for the client's next message: the client must see them
			// now, not with the first message.
			clientErr = http.NewResponseController(w).Flush()
		}
		if clientErr == nil {
			// A unary answer is one message: it goes with the trailers
			// when the handler returns, not flushed on its own.
			clientErr = copyFlush(w, x, !unary)
		}
		if !x.Failed() {
			relay.RelayTrailerFields(resp.Trailer)
		}
	default:
		resp := x.Response()
		stream := x.Streamed()
		var conn []byte // the node's Connection header names hop-by-hop headers too
		if !resp.Header.ConnectionClose() {
			conn = resp.Header.PeekBytes(keyConnection)
		}
		for k, v := range resp.Header.All() {
			if hopResponseHeader(k) || stream && bytes.EqualFold(k, []byte("Content-Length")) ||
				len(conn) > 0 && forward.ConnectionListed(conn, k) {
				continue
			}
			if name := s.headers.name(k); name != "" {
				relay.RelayField(name, s.headers.value(v))
			}
		}
		w.WriteHeader(resp.StatusCode())
		if stream {
			// The request went out whole and no attempt follows a
			// streamed answer: its body buffer goes back to the pool
			// now, not after a stream that may last minutes (4 KiB of
			// each open HTTP/2 stream's memory).
			r.Body = nil
			putBody(bp)
			bp = nil
			clientErr = relayFlush(w, x)
		} else {
			_, clientErr = w.Write(resp.Body())
		}
	}
	failed := x.Failed()
	x.Finish(clientErr)
	x = nil
	putBody(bp)
	if failed {
		// Reset the stream so the client sees the failure, not a clean
		// end.
		panic(http.ErrAbortHandler)
	}
}

// recoverH2 answers a panic with 500 (or a gRPC INTERNAL status) when
// nothing was written yet, logs it with the stack and ends the exchange.
// http.ErrAbortHandler, the deliberate reset of a broken stream, goes on.
// x is nil once the exchange was finished.
func (s *Server) recoverH2(w http.ResponseWriter, x *forward.Exchange, p any) {
	if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
		panic(p)
	}
	s.log.Error("gateway: panic serving a request", "panic", p, "stack", string(debug.Stack()))
	if x == nil {
		panic(http.ErrAbortHandler) // the answer was under way: reset the stream
	}
	x.FinishAfterPanic()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, `{"error":{"message":"internal error","type":"server_error","code":"internal_error"}}`)
}

// bodyPool holds request body buffers of HTTP/2 requests.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBody is the largest body buffer kept for reuse.
const maxPooledBody = 64 << 10

// putBody returns a body buffer to bodyPool; a large one goes to the
// garbage collector instead, and nil is ignored.
func putBody(bp *[]byte) {
	if bp != nil && cap(*bp) <= maxPooledBody {
		bodyPool.Put(bp)
	}
}

// readBody reads a request body into buf, up to limit bytes, each piece
// reserved from the gateway's body budget first.
func readBody(rd io.Reader, buf []byte, limit int, x *forward.Exchange) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		if !x.ReserveBody(n) {
			return buf[:0], forward.ErrBodyBudget
		}
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf[:0], forward.ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:0], forward.BodyError(err)
		}
	}
}

// copyFlush copies src to w, flushing after every read when flush is set
// so streamed messages reach the client as they are produced. It returns
// the client's write error (the client went away); a read error from src
// ends the copy and is the caller's to look at (Exchange.Failed).
func copyFlush(w http.ResponseWriter, src io.Reader, flush bool) error {
	rc := http.NewResponseController(w)
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				if ferr := rc.Flush(); ferr != nil {
					return ferr
				}
			}
		}
		if err != nil {
			return nil
		}
	}
}

// relayFlush is copyFlush for an HTTP node's streamed answer: each piece
// is written straight from the node connection's buffer (Exchange.Next),
// with no copy buffer held for the stream's life.
func relayFlush(w http.ResponseWriter, x *forward.Exchange) error {
	rc := http.NewResponseController(w)
	for {
		p, err := x.Next()
		if len(p) > 0 {
			if _, werr := w.Write(p); werr != nil {
				return werr
			}
			if ferr := rc.Flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return nil
		}
	}
}

// hopResponseHeader reports response headers that are not passed on
// (hop-by-hop, RFC 9110 §7.6.1; HTTP/2 has no such headers).
func hopResponseHeader(k []byte) bool {
	switch len(k) {
	case 2, 7, 10, 16, 17:
	default:
		return false
	}
	for _, h := range hopNames {
		if bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

var hopNames = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
