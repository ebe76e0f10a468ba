package h2client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 16<<10) }

// readLoop reads and processes the node's frames until the connection
// ends.
func (cc *conn) readLoop() {
	for {
		f, err := cc.hdec.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cc.streamError(se.StreamID, se.Code, fmt.Errorf("%w: %w", errMalformed, se))
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				cc.connError(http2.ErrCode(ce), fmt.Errorf("%w: %w", errMalformed, err))
				return
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				cc.connError(http2.ErrCodeFrameSize, err)
				return
			}
			cc.close(err)
			return
		}
		cc.reads.Add(1)
		if err := cc.process(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				cc.connError(http2.ErrCode(ce), fmt.Errorf("%w: %w", errMalformed, err))
			} else {
				cc.close(err)
			}
			return
		}
	}
}

// process handles one frame; an error ends the connection.
func (cc *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return cc.processHeaders(f)
	case *http2.DataFrame:
		return cc.processData(f)
	case *http2.RSTStreamFrame:
		return cc.processReset(f)
	case *http2.SettingsFrame:
		return cc.processSettings(f)
	case *http2.WindowUpdateFrame:
		return cc.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			cc.mu.Lock()
			cc.pinging = false
			cc.mu.Unlock()
			return nil
		}
		data := f.Data
		return cc.write(func() error { return cc.fr.WritePing(true, data) })
	case *http2.GoAwayFrame:
		cc.processGoAway(f)
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // push is disabled in our SETTINGS
	}
	return nil // PRIORITY, unknown types: ignored
}

// lookup returns the open stream id is for. nil with nil error: a stream
// that was open and is closed now (its late frames are dropped); an
// error: an id the node cannot use (RFC 9113 §5.1). Call with mu held.
func (cc *conn) lookup(id uint32) (*stream, error) {
	if s := cc.streams[id]; s != nil {
		return s, nil
	}
	if id%2 == 0 || id > cc.maxOpened {
		return nil, http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil, nil
}

// streamError resets a stream the node broke, failing it with err.
func (cc *conn) streamError(id uint32, code http2.ErrCode, err error) {
	cc.mu.Lock()
	s := cc.streams[id]
	if s != nil {
		cc.endLocked(s)
		s.failLocked(err)
	}
	cc.mu.Unlock()
	if s != nil {
		s.closeReqBody()
		cc.writeReset(id, code)
	}
}

func (cc *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	cc.mu.Lock()
	s, err := cc.lookup(f.StreamID)
	if s == nil {
		cc.mu.Unlock()
		return err
	}
	if f.Truncated {
		cc.mu.Unlock()
		cc.streamError(s.id, http2.ErrCodeCancel, errHeaderListSize)
		return nil
	}
	if s.resp == nil {
		resp, ok := cc.response(s, f)
		if !ok {
			cc.mu.Unlock()
			cc.streamError(s.id, http2.ErrCodeProtocol, fmt.Errorf("%w: bad :status or content-length", errMalformed))
			return nil
		}
		if resp == nil { // 1xx: the answer is still to come
			cc.mu.Unlock()
			return nil
		}
		s.resp = resp
		if f.StreamEnded() {
			s.endRecvLocked()
		}
		s.signalRead()
		cc.mu.Unlock()
		return nil
	}
	// Trailers end the stream and carry no pseudo-header.
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || s.endRecv {
		cc.mu.Unlock()
		cc.streamError(s.id, http2.ErrCodeProtocol, fmt.Errorf("%w: trailers without END_STREAM or with pseudo-headers", errMalformed))
		return nil
	}
	if s.declared >= 0 && s.got != s.declared {
		cc.mu.Unlock()
		cc.streamError(s.id, http2.ErrCodeProtocol, fmt.Errorf("%w: body length differs from content-length", errMalformed))
		return nil
	}
	s.trailer = s.resp.keep(f.RegularFields())
	if s.trailer == nil {
		s.trailer = []hpack.HeaderField{} // an empty trailer block still ends the answer with trailers
	}
	s.endRecvLocked()
	s.signalRead()
	cc.mu.Unlock()
	return nil
}

// response builds the answer of s from its first HEADERS: nil, true for
// an informational (1xx) one; false when it is malformed. Called with mu
// held.
func (cc *conn) response(s *stream, f *http2.MetaHeadersFrame) (*Response, bool) {
	code, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || code < 100 || code > 999 {
		return nil, false
	}
	if code < 200 {
		// 101 is not allowed in HTTP/2; an informational answer that
		// ends the stream is malformed.
		return nil, code != http.StatusSwitchingProtocols && !f.StreamEnded()
	}
	s.respBuf = Response{StatusCode: code, ContentLength: -1, Body: body{s}}
	resp := &s.respBuf
	resp.Header = resp.keep(f.RegularFields())
	for _, hf := range resp.Header {
		if hf.Name != "content-length" {
			continue
		}
		n, err := strconv.ParseInt(hf.Value, 10, 64)
		if err != nil || n < 0 || resp.ContentLength >= 0 && n != resp.ContentLength {
			return nil, false
		}
		resp.ContentLength, s.declared = n, n
	}
	if f.StreamEnded() {
		if resp.ContentLength > 0 && !s.head {
			return nil, false
		}
		if !s.head {
			resp.ContentLength = 0
		}
		resp.Body = http.NoBody
	}
	return resp, true
}

func (cc *conn) processData(f *http2.DataFrame) error {
	n := int64(f.Length) // padding counts against the windows too
	cc.mu.Lock()
	if n > cc.recvAvail {
		cc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	cc.recvAvail -= n
	s, err := cc.lookup(f.StreamID)
	if s == nil {
		// A closed stream's data: give its credit back to the connection.
		connInc := cc.creditLocked(n)
		cc.mu.Unlock()
		if err != nil {
			return err
		}
		cc.writeWindowUpdates(0, 0, connInc)
		return nil
	}
	switch {
	case s.resp == nil || s.endRecv:
		cc.rejectDataLocked(s.id, n, http2.ErrCodeProtocol, "DATA before the answer's headers or after its end")
		return nil
	case n > s.recvAvail:
		cc.rejectDataLocked(s.id, n, http2.ErrCodeFlowControl, "stream flow-control window exceeded")
		return nil
	}
	s.recvAvail -= n
	data := f.Data()
	s.got += int64(len(data))
	if s.declared >= 0 && (s.got > s.declared || f.StreamEnded() && s.got != s.declared) {
		cc.rejectDataLocked(s.id, n, http2.ErrCodeProtocol, "body length differs from content-length")
		return nil
	}
	// Padding, and data nobody will read, are consumed at once.
	spent := n - int64(len(data))
	if s.bodyClosed {
		spent = n
	} else if len(data) > 0 {
		if s.off == len(s.buf) {
			s.buf, s.off = s.buf[:0], 0
		}
		s.buf = append(s.buf, data...)
	}
	var streamInc, connInc uint32
	if spent > 0 {
		streamInc, connInc = cc.creditStreamLocked(s, spent), cc.creditLocked(spent)
	}
	if f.StreamEnded() {
		s.endRecvLocked()
	}
	s.signalRead()
	id := s.id
	cc.mu.Unlock()
	cc.writeWindowUpdates(id, streamInc, connInc)
	return nil
}

// rejectDataLocked gives a refused DATA frame's n bytes back to the
// connection, unlocks mu and resets stream id with code.
func (cc *conn) rejectDataLocked(id uint32, n int64, code http2.ErrCode, why string) {
	connInc := cc.creditLocked(n)
	cc.mu.Unlock()
	cc.writeWindowUpdates(0, 0, connInc)
	cc.streamError(id, code, fmt.Errorf("%w: %s", errMalformed, why))
}

func (cc *conn) processReset(f *http2.RSTStreamFrame) error {
	cc.mu.Lock()
	s, err := cc.lookup(f.StreamID)
	if s == nil {
		cc.mu.Unlock()
		return err
	}
	cc.endLocked(s)
	if f.ErrCode == http2.ErrCodeNo && s.endRecv {
		// The answer is whole; the node only wants no more of the request.
		s.sendStopped = true
		s.signalWrite()
	} else {
		var err error = http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}
		if f.ErrCode == http2.ErrCodeRefusedStream {
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		}
		s.failLocked(err)
	}
	unsent := !s.endSent
	cc.mu.Unlock()
	if unsent {
		s.closeReqBody() // the node wants no more of it
	}
	return nil
}

func (cc *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	cc.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingEnablePush:
			return http2.ConnectionError(http2.ErrCodeProtocol) // a server never sends it
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - cc.peerInitWindow
			cc.peerInitWindow = int64(st.Val)
			for _, s := range cc.streams {
				s.sendWindow += delta
				if s.sendWindow > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				s.signalWrite()
			}
		case http2.SettingMaxFrameSize:
			cc.peerMaxFrame = st.Val
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = st.Val
		}
		return nil
	})
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	err = cc.write(func() error { return cc.fr.WriteSettingsAck() })
	select {
	case <-cc.ready:
	default:
		close(cc.ready)
	}
	return err
}

func (cc *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	cc.mu.Lock()
	if f.StreamID == 0 {
		defer cc.mu.Unlock()
		if inc == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		cc.sendWindow += inc
		if cc.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		for _, s := range cc.streams {
			s.signalWrite()
		}
		return nil
	}
	s, err := cc.lookup(f.StreamID)
	if s == nil {
		cc.mu.Unlock()
		return err
	}
	var code http2.ErrCode
	switch {
	case inc == 0:
		code = http2.ErrCodeProtocol
	case s.sendWindow+inc > 1<<31-1:
		code = http2.ErrCodeFlowControl
	default:
		s.sendWindow += inc
		s.signalWrite()
		cc.mu.Unlock()
		return nil
	}
	id := s.id
	cc.mu.Unlock()
	cc.streamError(id, code, fmt.Errorf("%w: bad WINDOW_UPDATE", errMalformed))
	return nil
}

func (cc *conn) processGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.goingAway = true
	var refused []*stream
	for id, s := range cc.streams {
		if id > f.LastStreamID {
			cc.endLocked(s)
			s.failLocked(fmt.Errorf("%w: GOAWAY (last stream %d, %v)", ErrRefused, f.LastStreamID, f.ErrCode))
			refused = append(refused, s)
		}
	}
	closeNow := cc.idleLocked()
	cc.mu.Unlock()
	for _, s := range refused {
		s.closeReqBody()
	}
	if closeNow {
		cc.close(errGoneAway)
	}
}
