package h2client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/internal/h2key"
	"github.com/switchyard-dev/switchyard/internal/hpacklit"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its answer. Fields after id are guarded by
// the connection's mu.
type stream struct {
	cc         *conn
	head       bool        // a HEAD request: its answer has no body
	reqTrailer http.Header // the request's trailers, sent after its body
	ctx        context.Context
	aborted    <-chan struct{} // RoundTripAbort's abort; nil if none
	wakeRead   chan struct{}   // cap 1: the answer's state changed
	id         uint32
	reqBody    io.ReadCloser // closed once (closeReqBody), also to unblock a writer waiting in its Read
	reqDone    atomic.Bool

	wakeWrite   chan struct{} // cap 1, made when a writer first waits: a window grew or the stream ended
	resp        *Response
	respBuf     Response // resp's storage: a stream has one final answer
	buf         []byte   // answer bytes received, not yet read (from off)
	off         int
	trailer     []hpack.HeaderField // the answer's trailers, until Body hands them over at EOF
	declared    int64               // the answer's content-length, or -1
	got         int64               // answer body bytes received
	sendWindow  int64
	recvAvail   int64 // what the node may still send on the stream
	recvUnacked int64 // read, not yet returned by WINDOW_UPDATE
	err         error // why the stream failed
	endRecv     bool  // the answer is whole (END_STREAM received)
	endSent     bool  // the request is whole (END_STREAM sent)
	sendStopped bool  // the node wants no more of the request (RST_STREAM NO_ERROR after its answer)
	removed     bool  // out of the stream table: closed or reset
	bodyClosed  bool
}

// MaxInlineBody is the largest known-length body Do reads whole before
// it writes the headers, so that headers and body leave in one write:
// such a body is read only within Do (and closed, perhaps later).
const MaxInlineBody = 16 << 10

var inlinePool = sync.Pool{New: func() any { b := make([]byte, MaxInlineBody+1); return &b }}

// errNotSent: the connection closed between reserving a slot and opening
// the stream; nothing was sent, RoundTrip tries another connection.
var errNotSent = errors.New("h2client: connection closed before the request was sent")

func (cc *conn) roundTrip(req *Request, abort <-chan struct{}) (*Response, error) {
	body, length := req.Body, req.ContentLength
	if body == http.NoBody {
		body = nil
	}
	if body == nil {
		length = 0
	}
	// A small body of known length is read first: it can go with the
	// headers. (A body the caller streams is read by writeBody.)
	var out outgoingBody
	if body != nil && length >= 0 && length <= MaxInlineBody {
		fb := inlinePool.Get().(*[]byte)
		// One byte more than declared: a longer body is caught here.
		n, err := io.ReadFull(body, (*fb)[:length+1])
		if n != int(length) || err != io.ErrUnexpectedEOF && err != io.EOF {
			inlinePool.Put(fb)
			closeReqBody(req)
			cc.unreserve()
			if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
				err = errBodyLength
			}
			return nil, err
		}
		out = outgoingBody{first: (*fb)[:n], fb: fb, whole: true}
	} else {
		out.whole = body == nil
	}
	resp, err := cc.send(req, body, length, out, abort)
	for tries := 1; errors.Is(err, errNotSent); tries++ {
		// Nothing of the request went out, and send left the body to
		// us: try another connection, or give up.
		if tries == 3 {
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		} else if cc, err = cc.t.reserve(req.Ctx, abort); err == nil {
			resp, err = cc.send(req, body, length, out, abort)
			continue
		}
		putInline(out.fb)
		closeReqBody(req)
		break
	}
	return resp, err
}

// outgoingBody is what roundTrip read of a request's body before
// sending it: all of it (whole, first) when it is small and of known
// length, or none (whole: there is no body).
type outgoingBody struct {
	first []byte
	fb    *[]byte // first's pooled buffer
	whole bool
}

// send opens a stream for req on cc (whose slot the caller reserved),
// writes the request, and waits for the answer's headers.
func (cc *conn) send(req *Request, body io.ReadCloser, length int64, out outgoingBody, abort <-chan struct{}) (*Response, error) {
	s := &stream{cc: cc, head: req.Method == http.MethodHead, reqTrailer: req.Trailer, ctx: req.Ctx, aborted: abort,
		wakeRead: make(chan struct{}, 1), declared: -1, reqBody: body}
	trailers := len(req.Trailer) > 0
	first, fb, whole := out.first, out.fb, out.whole

	cc.wmu.Lock()
	if cc.werr != nil {
		cc.wmu.Unlock()
		cc.unreserve()
		return nil, errNotSent
	}
	if err := cc.encodeRequest(req, length, trailers); err != nil {
		cc.wmu.Unlock()
		putInline(fb)
		closeReqBody(req)
		cc.unreserve()
		return nil, err
	}
	cc.mu.Lock()
	cc.reserved--
	if cc.closed || cc.goingAway {
		// The node would ignore a stream opened after its GOAWAY.
		closeNow := cc.idleLocked()
		cc.mu.Unlock()
		cc.wmu.Unlock()
		if closeNow {
			cc.close(errGoneAway)
		}
		return nil, errNotSent
	}
	s.id = cc.nextID
	cc.nextID += 2
	cc.maxOpened = s.id
	cc.streams[s.id] = s
	s.sendWindow = cc.peerInitWindow
	s.recvAvail = int64(cc.t.streamWindow())
	maxFrame := int(cc.peerMaxFrame)
	n := int64(len(first))
	inline := whole && n <= min(s.sendWindow, cc.sendWindow) && len(first) <= maxFrame
	if inline {
		s.sendWindow -= n
		cc.sendWindow -= n
	}
	cc.mu.Unlock()

	// Everything goes now when it can: headers, the body, its end.
	endWithHeaders := inline && len(first) == 0 && !trailers
	err := cc.writeHeaderBlock(s.id, cc.hblock, endWithHeaders, maxFrame)
	if err == nil && inline && len(first) > 0 {
		err = cc.fr.WriteData(s.id, !trailers, first)
	}
	if err == nil && inline && trailers {
		if err = cc.encodeTrailers(req.Trailer); err == nil {
			err = cc.writeHeaderBlock(s.id, cc.hblock, true, maxFrame)
		}
	}
	if err != nil {
		cc.werr = err
	}
	cc.wmu.Unlock()
	if err != nil {
		putInline(fb)
		closeReqBody(req)
		cc.close(err)
		return nil, err
	}
	if inline {
		putInline(fb)
		s.closeReqBody()
		s.sentEnd()
	} else {
		go s.writeBody(body, length, first, fb, whole, trailers)
	}
	return s.awaitResponse()
}

func putInline(fb *[]byte) {
	if fb != nil {
		inlinePool.Put(fb)
	}
}

// awaitResponse waits for the answer's headers.
func (s *stream) awaitResponse() (*Response, error) {
	cc := s.cc
	for {
		cc.mu.Lock()
		resp, err := s.resp, s.err
		cc.mu.Unlock()
		if resp != nil {
			return resp, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wakeRead:
		case <-s.ctx.Done():
			err := s.ctx.Err()
			s.abort(err)
			return nil, err
		case <-s.aborted:
			s.abort(ErrAborted)
			return nil, ErrAborted
		}
	}
}

// writeBody writes the rest of the request: pending (the part of a whole
// body that could not go with the headers), or what body gives as it
// comes (at most length bytes when length ≥ 0), then the end of stream
// or the trailers.
func (s *stream) writeBody(body io.ReadCloser, length int64, pending []byte, fb *[]byte, whole, trailers bool) {
	defer func() {
		putInline(fb)
		s.closeReqBody()
	}()
	if whole {
		if err := s.sendData(pending, !trailers); err == nil && trailers {
			_ = s.sendTrailers()
		}
		return
	}
	buf := make([]byte, 16<<10)
	var sent int64
	for {
		n, rerr := body.Read(buf)
		sent += int64(n)
		if length >= 0 && (sent > length || rerr == io.EOF && sent != length) {
			s.abort(errBodyLength)
			return
		}
		end := rerr == io.EOF && !trailers
		if n > 0 || end {
			if err := s.sendData(buf[:n], end); err != nil {
				return
			}
		}
		switch {
		case rerr == io.EOF:
			if trailers {
				_ = s.sendTrailers()
			}
			return
		case rerr != nil:
			s.abort(fmt.Errorf("h2client: reading the request body: %w", rerr))
			return
		}
	}
}

// closeReqBody closes the request's body once: when it was sent, or when
// the stream failed (which also ends a writer's wait in the body's Read,
// as net/http does).
func (s *stream) closeReqBody() {
	if s.reqBody != nil && s.reqDone.CompareAndSwap(false, true) {
		_ = s.reqBody.Close()
	}
}

// sendData writes p as DATA frames within the flow-control windows, the
// last with END_STREAM when end.
func (s *stream) sendData(p []byte, end bool) error {
	cc := s.cc
	for {
		cc.mu.Lock()
		if err := s.sendErrLocked(); err != nil {
			cc.mu.Unlock()
			return err
		}
		k := min(int64(len(p)), s.sendWindow, cc.sendWindow, int64(cc.peerMaxFrame))
		if k <= 0 && len(p) > 0 {
			if s.wakeWrite == nil {
				s.wakeWrite = make(chan struct{}, 1)
			}
			wake := s.wakeWrite
			cc.mu.Unlock()
			select {
			case <-wake:
			case <-s.ctx.Done():
				err := s.ctx.Err()
				s.abort(err)
				return err
			case <-s.aborted:
				s.abort(ErrAborted)
				return ErrAborted
			}
			continue
		}
		k = max(k, 0)
		s.sendWindow -= k
		cc.sendWindow -= k
		cc.mu.Unlock()
		last := int(k) == len(p)
		chunk := p[:k]
		if err := cc.write(func() error { return cc.fr.WriteData(s.id, end && last, chunk) }); err != nil {
			return err
		}
		p = p[k:]
		if last {
			if end {
				s.sentEnd()
			}
			return nil
		}
	}
}

func (s *stream) sendTrailers() error {
	cc := s.cc
	cc.mu.Lock()
	err := s.sendErrLocked()
	maxFrame := int(cc.peerMaxFrame)
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	err = cc.write(func() error {
		if err := cc.encodeTrailers(s.reqTrailer); err != nil {
			return err
		}
		return cc.writeHeaderBlock(s.id, cc.hblock, true, maxFrame)
	})
	if err == nil {
		s.sentEnd()
	}
	return err
}

// errSendStopped: the node asked for no more of the request.
var errSendStopped = errors.New("h2client: the node stopped reading the request")

func (s *stream) sendErrLocked() error {
	switch {
	case s.sendStopped:
		return errSendStopped
	case s.err != nil:
		return s.err
	case s.removed:
		return errBodyClosed
	}
	return nil
}

// sentEnd records that the request's END_STREAM went out.
func (s *stream) sentEnd() {
	cc := s.cc
	cc.mu.Lock()
	s.endSent = true
	if s.endRecv {
		cc.endLocked(s)
	}
	cc.mu.Unlock()
}

// endRecvLocked records that the answer is whole.
func (s *stream) endRecvLocked() {
	s.endRecv = true
	if s.endSent || s.sendStopped {
		s.cc.endLocked(s)
	}
}

// endLocked takes s out of the stream table: its slot is free.
func (cc *conn) endLocked(s *stream) {
	if s.removed {
		return
	}
	s.removed = true
	delete(cc.streams, s.id)
	s.signalWrite()
	if cc.idleLocked() { // draining or going away, and now idle
		why := errIdle
		if cc.goingAway {
			why = errGoneAway
		}
		go cc.close(why)
	}
}

// failLocked makes s fail with err (the first error stays).
func (s *stream) failLocked(err error) {
	if s.err == nil {
		s.err = err
	}
	s.signalRead()
	s.signalWrite()
}

// abort resets the stream (when still open) and fails it with err.
func (s *stream) abort(err error) {
	cc := s.cc
	cc.mu.Lock()
	open := !s.removed
	if open {
		cc.endLocked(s)
	}
	s.failLocked(err)
	cc.mu.Unlock()
	s.closeReqBody()
	if open {
		cc.writeReset(s.id, http2.ErrCodeCancel)
	}
}

func (s *stream) signalRead() {
	select {
	case s.wakeRead <- struct{}{}:
	default:
	}
}

func (s *stream) signalWrite() {
	if s.wakeWrite != nil {
		select {
		case s.wakeWrite <- struct{}{}:
		default:
		}
	}
}

// creditLocked counts n bytes consumed on the connection and returns the
// WINDOW_UPDATE increment due (0: not yet; updates go in quarters of the
// window, not per read).
func (cc *conn) creditLocked(n int64) uint32 {
	cc.recvUnacked += n
	if cc.recvUnacked < int64(cc.t.connWindow())/4 {
		return 0
	}
	inc := cc.recvUnacked
	cc.recvAvail += inc
	cc.recvUnacked = 0
	return uint32(inc)
}

// creditStreamLocked is creditLocked for s's own window; nothing is due
// on a stream whose answer is whole.
func (cc *conn) creditStreamLocked(s *stream, n int64) uint32 {
	if s.removed || s.endRecv {
		return 0
	}
	s.recvUnacked += n
	if s.recvUnacked < int64(cc.t.streamWindow())/4 {
		return 0
	}
	inc := s.recvUnacked
	s.recvAvail += inc
	s.recvUnacked = 0
	return uint32(inc)
}

// body is an answer's body as it arrives.
type body struct{ s *stream }

func (b body) Read(p []byte) (int, error) {
	s, cc := b.s, b.s.cc
	for {
		cc.mu.Lock()
		switch {
		case s.bodyClosed:
			cc.mu.Unlock()
			return 0, errBodyClosed
		case s.off < len(s.buf):
			n := copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				s.buf, s.off = s.buf[:0], 0
			}
			streamInc, connInc := cc.creditStreamLocked(s, int64(n)), cc.creditLocked(int64(n))
			cc.mu.Unlock()
			cc.writeWindowUpdates(s.id, streamInc, connInc)
			return n, nil
		case s.endRecv:
			tr := s.trailer
			s.trailer = nil
			cc.mu.Unlock()
			if tr != nil {
				s.resp.Trailer = tr
			}
			return 0, io.EOF
		case s.err != nil:
			err := s.err
			cc.mu.Unlock()
			return 0, err
		}
		cc.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-s.wakeRead:
		case <-s.ctx.Done():
			err := s.ctx.Err()
			s.abort(err)
			return 0, err
		case <-s.aborted:
			s.abort(ErrAborted)
			return 0, ErrAborted
		}
	}
}

// Close drops what was not read; an answer not yet whole is reset.
func (b body) Close() error {
	s, cc := b.s, b.s.cc
	cc.mu.Lock()
	if s.bodyClosed {
		cc.mu.Unlock()
		return nil
	}
	s.bodyClosed = true
	connInc := cc.creditLocked(int64(len(s.buf) - s.off))
	s.buf, s.off = nil, 0
	open := !s.removed
	if open {
		cc.endLocked(s)
		s.failLocked(errBodyClosed)
	}
	cc.mu.Unlock()
	if open {
		cc.writeReset(s.id, http2.ErrCodeCancel)
	}
	cc.writeWindowUpdates(0, 0, connInc)
	return nil
}

// encodeRequest encodes req's header block into hblock (under wmu).
func (cc *conn) encodeRequest(req *Request, length int64, trailers bool) error {
	method, scheme := req.Method, req.Scheme
	if method == "" {
		method = http.MethodGet
	}
	if scheme == "" {
		scheme = "http"
	}
	if !httpguts.ValidHostHeader(req.Authority) || !validPath(req.Path) || !httpguts.ValidHeaderFieldName(method) {
		return errors.New("h2client: invalid method, host or path")
	}
	b := cc.hblock[:0]
	if !cc.noTableSent {
		b, cc.noTableSent = hpacklit.AppendNoTable(b), true
	}
	b = hpacklit.Append(b, ":method", method)
	b = hpacklit.Append(b, ":scheme", scheme)
	b = hpacklit.Append(b, ":authority", req.Authority)
	b = hpacklit.Append(b, ":path", req.Path)
	sentTE := false
	for _, hf := range req.Header {
		switch hf.Name {
		case "connection", "proxy-connection", "transfer-encoding", "upgrade", "keep-alive", "host", "content-length", "trailer":
			continue
		case "te":
			if !sentTE && strings.EqualFold(strings.TrimSpace(hf.Value), "trailers") {
				b, sentTE = hpacklit.Append(b, "te", "trailers"), true
			}
			continue
		}
		if !validWireName(hf.Name) {
			return fmt.Errorf("%w: %q", errInvalidFieldName, hf.Name)
		}
		if !httpguts.ValidHeaderFieldValue(hf.Value) {
			return fmt.Errorf("h2client: invalid value for header %q", hf.Name)
		}
		b = hpacklit.Append(b, hf.Name, hf.Value)
	}
	if length > 0 {
		var n [20]byte
		b = hpacklit.Append(b, "content-length", string(strconv.AppendInt(n[:0], length, 10)))
	}
	if trailers {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			if name := h2key.Wire(k, cc.lower); name != "" {
				keys = append(keys, name)
			}
		}
		b = hpacklit.Append(b, "trailer", strings.Join(keys, ","))
	}
	cc.hblock = b
	return nil
}

// encodeTrailers encodes the request's trailers into hblock (under wmu).
func (cc *conn) encodeTrailers(tr http.Header) error {
	b := cc.hblock[:0]
	for k, vv := range tr {
		name := h2key.Wire(k, cc.lower)
		if name == "" {
			return fmt.Errorf("%w: trailer %q", errInvalidFieldName, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h2client: invalid value for trailer %q", k)
			}
			b = hpacklit.Append(b, name, v)
		}
	}
	cc.hblock = b
	return nil
}

// writeHeaderBlock writes a header block as HEADERS and CONTINUATION
// frames of at most maxFrame bytes (under wmu).
func (cc *conn) writeHeaderBlock(id uint32, block []byte, endStream bool, maxFrame int) error {
	frag := block[:min(len(block), maxFrame)]
	rest := block[len(frag):]
	if err := cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		frag, rest = rest[:min(len(rest), maxFrame)], rest[min(len(rest), maxFrame):]
		if err := cc.fr.WriteContinuation(id, len(rest) == 0, frag); err != nil {
			return err
		}
	}
	return nil
}
