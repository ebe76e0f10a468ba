package h2server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hdecode"
	"golang.org/x/net/http2"
)

// conn is one client connection. Its goroutine (serve) reads and
// processes frames; handlers write their streams' frames themselves.
//
// Locks: mu guards the stream table, the flow-control windows and each
// stream's receive side; wmu guards the framer's write side, the HPACK
// encoder and the write buffer. No code holds both at once.
type conn struct {
	srv        *Server
	nc         net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	fr         *http2.Framer
	hdec       *hdecode.Decoder // reads fr's frames, header blocks decoded (reader only)
	remoteAddr string
	clientAddr netip.AddrPort // remoteAddr parsed, once (zero if it is not an IP address)
	tls        *tls.ConnectionState
	closeOnce  sync.Once
	lingering  atomic.Bool       // GOAWAY sent and streams ended: the reader drains, then closes
	canon      map[string]string // lower-case wire names to canonical keys (reader only)
	pending    []*stream         // dispatched once the reader would wait (reader only)

	wmu         sync.Mutex
	hblock      []byte            // the header block being written (hpacklit)
	noTableSent bool              // the first block's table size update went out
	werr        error             // the first write error; later writes fail with it
	lower       map[string]string // canonical answer keys to wire names (under wmu)

	mu             sync.Mutex
	streams        map[uint32]*stream // open streams, by id
	active         uint32             // streams whose handler has not returned
	refused        int                // streams refused since active was last 0
	maxClientID    uint32             // highest stream id the client opened
	sendWindow     int64              // the client's connection-level window for our DATA
	peerInitWindow int64              // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame   uint32             // the client's SETTINGS_MAX_FRAME_SIZE
	recvAvail      int64              // what the client may still send on the connection
	recvUnacked    int64              // consumed, not yet returned by WINDOW_UPDATE
	refundDue      int64              // returned, WINDOW_UPDATE not yet written (sendRefund)
	finishing      uint32             // streams whose handler returned, last frames being written
	goingAway      bool               // GOAWAY sent: no new streams; close when idle
	refusedIDs     [16]uint32         // streams reset before they opened, the latest
	refusedNext    uint32
	closed         bool
	idle           *time.Timer
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:            s,
		nc:             nc,
		br:             bufio.NewReaderSize(nc, 8<<10),
		bw:             bufio.NewWriterSize(nc, 16<<10),
		remoteAddr:     nc.RemoteAddr().String(),
		canon:          make(map[string]string),
		lower:          make(map[string]string),
		streams:        make(map[uint32]*stream),
		sendWindow:     1<<16 - 1,
		peerInitWindow: 1<<16 - 1,
		peerMaxFrame:   defaultFrameSize,
		recvAvail:      1<<16 - 1,
	}
	if tc, ok := nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		c.tls = &cs
	}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.clientAddr = ta.AddrPort()
	} else {
		c.clientAddr, _ = netip.ParseAddrPort(c.remoteAddr)
	}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.hdec = hdecode.New(c.fr, c.br, s.maxHeaderBytes())
	c.fr.SetMaxReadFrameSize(s.frameSize())
	c.fr.SetReuseFrames()
	return c
}

// clientPreface is what every HTTP/2 client sends first.
const clientPreface = http2.ClientPreface

func (c *conn) serve() {
	defer func() {
		if c.lingering.Load() {
			c.drain()
		}
		c.close(errConnClosed)
	}()
	timeout := c.srv.PrefaceTimeout
	if timeout <= 0 {
		timeout = defaultPreface
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != clientPreface {
		c.srv.logger().Debug("h2server: no client preface", "client", c.remoteAddr, "error", err)
		return
	}
	if err := c.writeSettings(); err != nil {
		return
	}
	// The client's preface ends with a SETTINGS frame.
	f, err := c.hdec.ReadFrame()
	if err != nil {
		c.readFailed(err)
		return
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		c.goAway(http2.ErrCodeProtocol, "expected SETTINGS")
		return
	}
	if err := c.processSettings(sf); err != nil {
		c.frameFailed(err)
		return
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if c.lingering.Load() { // a GOAWAY went out before the deadline was cleared
		return
	}
	if d := c.srv.IdleTimeout; d > 0 {
		c.mu.Lock()
		c.idle = time.AfterFunc(d, c.onIdle)
		c.mu.Unlock()
	}
	for {
		if c.br.Buffered() == 0 {
			c.dispatchPending() // the next read may wait: start what arrived
		}
		f, err := c.hdec.ReadFrame()
		if c.lingering.Load() {
			return // GOAWAY went out while this read waited
		}
		if err != nil {
			if !c.readFailed(err) {
				return
			}
			continue
		}
		if err := c.processFrame(f); err != nil && !c.frameFailed(err) {
			return
		}
	}
}

// readFailed handles a ReadFrame error; it reports whether the
// connection goes on.
func (c *conn) readFailed(err error) bool {
	var se http2.StreamError
	switch {
	case errors.As(err, &se):
		// A HEADERS frame the framer refused (an invalid field) still
		// opened its stream, now closed: its later frames are not on an
		// idle stream.
		c.mu.Lock()
		if se.StreamID%2 == 1 && se.StreamID > c.maxClientID && !c.goingAway {
			c.maxClientID = se.StreamID
		}
		c.mu.Unlock()
		return c.frameFailed(se)
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.goAway(http2.ErrCodeFrameSize, "frame too large")
		return false
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		detail := ""
		if d := c.hdec.ErrorDetail(); d != nil {
			detail = d.Error()
		}
		c.goAway(http2.ErrCode(ce), detail)
		return false
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.srv.logger().Debug("h2server: read", "client", c.remoteAddr, "error", err)
	}
	return false
}

// frameFailed handles an error from processing a frame: a stream error
// resets that stream, a connection error ends the connection. It
// reports whether the connection goes on.
func (c *conn) frameFailed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.mu.Lock()
		st := c.streams[se.StreamID]
		ours := st != nil && !st.peerReset
		c.mu.Unlock()
		switch {
		case ours:
			c.resetStream(st, se.Code) // once: later frames in flight are ignored
		case st == nil:
			// Refused before it was opened: its frames in flight are
			// ignored as well (RFC 9113 §5.1).
			c.mu.Lock()
			c.refusedIDs[c.refusedNext%uint32(len(c.refusedIDs))] = se.StreamID
			c.refusedNext++
			c.mu.Unlock()
			c.writeReset(se.StreamID, se.Code)
		default:
			c.writeReset(se.StreamID, se.Code)
		}
		return true
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.goAway(http2.ErrCode(ce), "")
		return false
	}
	c.srv.logger().Debug("h2server: connection error", "client", c.remoteAddr, "error", err)
	return false
}

func (c *conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		err := c.processData(f)
		c.sendRefund()
		return err
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			return c.writePingAck(f.Data)
		}
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.GoAwayFrame:
		// The client is closing: it will not take pushed streams, which
		// this server never sends. Its open streams finish, and it
		// closes the connection (or the idle timeout does).
		if f.ErrCode != http2.ErrCodeNo {
			c.srv.logger().Debug("h2server: client sent GOAWAY", "client", c.remoteAddr, "code", f.ErrCode)
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients do not push
	case *http2.PriorityFrame:
		// Priorities are ignored (RFC 9113 deprecates them), but a
		// stream cannot depend on itself (RFC 9113 §5.3.1).
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	}
	return nil
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			delta := int64(s.Val) - c.peerInitWindow
			c.peerInitWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					c.mu.Unlock()
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.cond.Signal()
			}
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.mu.Lock()
			c.peerMaxFrame = s.Val
			c.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.writeControl(func() error { return c.fr.WriteSettingsAck() })
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		for _, st := range c.streams {
			if st.waitingWindow {
				st.cond.Signal()
			}
		}
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxClientID && !c.goingAway {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		return nil // closed: ignored
	}
	st.sendWindow += inc
	if st.sendWindow > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.cond.Signal()
	return nil
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		idle := f.StreamID > c.maxClientID && !c.goingAway
		c.mu.Unlock()
		if idle {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	st.peerReset = true
	c.closeStreamLocked(st, errStreamReset)
	c.mu.Unlock()
	st.ctx.cancel()
	c.sendRefund()
	return nil
}

// closeStreamLocked fails st's body reads and writes with err. It stays
// in the table until its handler returns (streamDone), so that frames the
// client sent before it saw the reset are ignored (RFC 9113 §5.1). Call
// with mu held.
func (c *conn) closeStreamLocked(st *stream, err error) {
	st.reset = true
	if !st.recvDone || len(st.body) > st.off {
		st.recvDone = true
		st.bodyErr = err
		c.refundLocked(int64(len(st.body) - st.off))
		st.body, st.off = nil, 0
	}
	st.cond.Broadcast()
}

func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.mu.Unlock()
		return c.processTrailers(st, f)
	}
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	if id <= c.maxClientID {
		refused := c.wasRefused(id)
		c.mu.Unlock()
		if refused {
			return nil // trailers of a stream we refused
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if c.goingAway {
		c.mu.Unlock()
		return nil // streams after GOAWAY are ignored, and so are their frames
	}
	c.maxClientID = id
	if c.active >= c.srv.maxStreams() {
		c.refused++
		calm := c.refused > 4*int(c.srv.maxStreams())
		c.mu.Unlock()
		if calm {
			// Streams opened faster than handlers end, again and
			// again: the rapid-reset pattern.
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	c.mu.Unlock()

	st := newStream(c, id)
	if err := st.readRequest(f); err != nil {
		if !f.Truncated {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: err}
		}
		st.minimalRequest() // what was decoded before the limit does not make a request
	}
	st.tooLarge = f.Truncated
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		st.ctx.cancel()
		return nil
	}
	c.streams[id] = st
	c.active++
	if c.active == 1 && c.idle != nil {
		c.idle.Stop()
	}
	st.sendWindow = c.peerInitWindow
	if f.StreamEnded() {
		st.recvDone, st.bodyErr = true, io.EOF
	}
	c.mu.Unlock()
	if f.StreamEnded() || st.tooLarge {
		c.start(st)
	} else {
		c.pending = append(c.pending, st)
	}
	return nil
}

func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	c.mu.Lock()
	done, closed := st.recvDone, st.recvDone && st.answerEnded && !st.reset
	c.mu.Unlock()
	switch {
	case closed:
		// Both ends sent END_STREAM: the stream is closed, even while
		// its handler's goroutine still releases it (RFC 9113 §5.1).
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	case done: // half-closed (remote)
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	st.addTrailers(f.RegularFields())
	return c.endBody(st)
}

// endBody marks st's request complete; the declared length must match.
func (c *conn) endBody(st *stream) error {
	c.mu.Lock()
	if st.declared >= 0 && st.received != st.declared && !st.discard {
		c.mu.Unlock()
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("body length differs from content-length")}
	}
	st.recvDone = true
	st.bodyErr = io.EOF
	st.cond.Broadcast()
	c.mu.Unlock()
	c.dispatch(st)
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	size := int64(f.Length) // flow control counts the padding too
	data := f.Data()
	c.mu.Lock()
	st := c.streams[id]
	if st == nil || st.recvDone {
		if st == nil && id > c.maxClientID && !c.goingAway {
			c.mu.Unlock()
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if size > c.recvAvail {
			c.mu.Unlock()
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.recvAvail -= size
		c.refundLocked(size)
		// Ignored: frames in flight on a stream we reset, and on streams
		// opened after our GOAWAY (RFC 9113 §5.1, §6.8).
		ignore := st != nil && st.reset && !st.peerReset || st == nil && (id > c.maxClientID || c.wasRefused(id))
		c.mu.Unlock()
		if ignore {
			return nil
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if size > c.recvAvail {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvAvail -= size
	if size > st.recvAvail {
		c.refundLocked(size)
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvAvail -= size
	if st.discard {
		c.refundLocked(size)
		if f.StreamEnded() {
			st.recvDone = true
		}
		c.mu.Unlock()
		return nil
	}
	if pad := size - int64(len(data)); pad > 0 {
		c.refundLocked(pad)
		st.recvAvail += pad // the stream's share comes back with its next update
	}
	st.received += int64(len(data))
	if st.declared >= 0 && st.received > st.declared {
		c.refundLocked(int64(len(data)))
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: errors.New("body longer than content-length")}
	}
	if len(data) > 0 {
		if st.off == len(st.body) {
			st.body, st.off = st.body[:0], 0
		}
		st.body = append(st.body, data...)
		st.cond.Broadcast()
	}
	c.mu.Unlock()
	if f.StreamEnded() {
		return c.endBody(st)
	}
	return nil
}

// wasRefused reports whether id is one of the latest streams reset before
// they opened. Call with mu held.
func (c *conn) wasRefused(id uint32) bool {
	for _, r := range c.refusedIDs {
		if r == id {
			return true
		}
	}
	return false
}

// refundLocked returns n consumed bytes of the connection's receive
// window; once half the window is due, a WINDOW_UPDATE is queued for
// sendRefund. Call with mu held.
func (c *conn) refundLocked(n int64) {
	if n <= 0 {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.srv.connWindow())/2 {
		c.recvAvail += c.recvUnacked
		c.refundDue += c.recvUnacked
		c.recvUnacked = 0
	}
}

// sendRefund writes the connection WINDOW_UPDATE refundLocked queued,
// if any. Call without mu held, after code that may have refunded.
func (c *conn) sendRefund() {
	c.mu.Lock()
	inc := c.refundDue
	c.refundDue = 0
	c.mu.Unlock()
	if inc > 0 {
		c.writeWindowUpdate(0, uint32(inc))
	}
}

// dispatch starts st's handler if it was waiting for its request to
// arrive (reader only).
func (c *conn) dispatch(st *stream) {
	for i, p := range c.pending {
		if p == st {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			c.start(st)
			return
		}
	}
}

// dispatchPending starts the handlers of streams whose request is still
// arriving: the reader is about to wait for the client.
func (c *conn) dispatchPending() {
	for _, st := range c.pending {
		c.start(st)
	}
	clear(c.pending)
	c.pending = c.pending[:0]
}

// start runs st's handler on a worker, unless the stream was reset while
// its request arrived (reader only).
func (c *conn) start(st *stream) {
	c.mu.Lock()
	reset := st.reset
	c.mu.Unlock()
	if reset {
		c.discard(st)
		return
	}
	c.srv.workers.run(st)
}

// onIdle closes the connection if it has had no stream for IdleTimeout.
func (c *conn) onIdle() {
	c.mu.Lock()
	idle := c.active == 0 && c.finishing == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.goAway(http2.ErrCodeNo, "idle")
	}
}

// shutdown sends GOAWAY and closes the connection once its streams are
// done.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.goingAway = true
	idle := c.active == 0 && c.finishing == 0
	last := c.maxClientID
	c.mu.Unlock()
	if idle {
		c.goAway(http2.ErrCodeNo, "")
		return
	}
	_ = c.writeControl(func() error { return c.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
}

// goAway tells the client the connection ends, with code, and ends its
// streams. The socket stays open for up to a second while the reader
// discards what the client still sends: closing with unread data would
// make the kernel reset the connection, and the client could lose the
// GOAWAY with the reason (net/http's server waits the same second).
func (c *conn) goAway(code http2.ErrCode, debug string) {
	c.mu.Lock()
	last := c.maxClientID
	c.goingAway = true
	c.mu.Unlock()
	if code != http2.ErrCodeNo {
		c.srv.logger().Debug("h2server: connection error", "client", c.remoteAddr, "code", code, "detail", debug)
	}
	_ = c.writeControl(func() error { return c.fr.WriteGoAway(last, code, []byte(debug)) })
	c.end(fmt.Errorf("h2server: GOAWAY %v", code))
	c.lingering.Store(true)
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.lingerAfterGoAway()))
}

// lingerMaxBytes bounds how much is read after a GOAWAY.
const lingerMaxBytes = 4 << 20

// drain discards what the client sends until it closes, the linger
// deadline passes or lingerMaxBytes were read (reader only).
func (c *conn) drain() {
	_, _ = io.CopyN(io.Discard, c.br, lingerMaxBytes)
}

// close ends the connection and closes its socket.
func (c *conn) close(err error) {
	c.end(err)
	_ = c.nc.Close()
}

// end ends the connection's streams, once: blocked reads and writes of
// its streams fail with err, their contexts are cancelled, and nothing
// more is written.
func (c *conn) end(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		if c.idle != nil {
			c.idle.Stop()
		}
		open := make([]*stream, 0, len(c.streams))
		for _, st := range c.streams {
			c.closeStreamLocked(st, err)
			open = append(open, st)
		}
		c.mu.Unlock()
		for _, st := range open {
			st.ctx.cancel()
		}
		c.wmu.Lock()
		if c.werr == nil {
			c.werr = err
		}
		c.wmu.Unlock()
	})
}

// releaseSlot frees the slot of a stream whose handler returned, once
// (its goroutine only); its last frames are still to be written
// (finishing counts it until streamDone).
func (c *conn) releaseSlot(st *stream) {
	if st.released {
		return
	}
	st.released = true
	c.mu.Lock()
	st.answerEnded = true
	c.active--
	c.finishing++
	if c.active == 0 {
		c.refused = 0
	}
	c.mu.Unlock()
}

// streamDone releases a stream whose last frames were written (or that
// never ran: discard).
func (c *conn) streamDone(st *stream) {
	c.mu.Lock()
	if c.streams[st.id] == st {
		delete(c.streams, st.id)
	}
	if !st.recvDone || len(st.body) > st.off {
		st.recvDone = true
		c.refundLocked(int64(len(st.body) - st.off))
	}
	st.bodyErr = errHandlerDone
	st.body, st.off = nil, 0
	c.finishing--
	idle := c.active == 0 && c.finishing == 0 && !c.closed
	closeNow := idle && c.goingAway
	if idle && c.idle != nil {
		c.idle.Reset(c.srv.IdleTimeout)
	}
	c.mu.Unlock()
	c.sendRefund()
	if closeNow {
		c.goAway(http2.ErrCodeNo, "")
	}
}

// discard releases a stream reset before its handler started: the
// handler never runs (reader only).
func (c *conn) discard(st *stream) {
	st.ctx.cancel()
	c.releaseSlot(st)
	c.streamDone(st)
}

// Writes. Each takes wmu, writes its frames into bw and flushes bw into
// the connection (which, in the gateway, batches many streams' flushes
// into one system call).

func (c *conn) writeControl(write func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	err := write()
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
	}
	return err
}

func (c *conn) writeSettings() error {
	s := c.srv
	return c.writeControl(func() error {
		err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.maxStreams()},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(s.streamWindow())},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: s.frameSize()},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.maxHeaderBytes()},
		)
		if err != nil {
			return err
		}
		c.recvAvail = int64(s.connWindow()) // no frame was read yet: mu not needed
		if inc := s.connWindow() - (1<<16 - 1); inc > 0 {
			return c.fr.WriteWindowUpdate(0, uint32(inc))
		}
		return nil
	})
}

func (c *conn) writePingAck(data [8]byte) error {
	return c.writeControl(func() error { return c.fr.WritePing(true, data) })
}

func (c *conn) writeWindowUpdate(id, inc uint32) {
	_ = c.writeControl(func() error { return c.fr.WriteWindowUpdate(id, inc) })
}

func (c *conn) writeReset(id uint32, code http2.ErrCode) {
	_ = c.writeControl(func() error { return c.fr.WriteRSTStream(id, code) })
}

// resetStream resets st with code: its handler's body reads and writes
// fail and its context is cancelled.
func (c *conn) resetStream(st *stream, code http2.ErrCode) {
	c.mu.Lock()
	already := st.reset
	c.closeStreamLocked(st, errStreamReset)
	c.mu.Unlock()
	st.ctx.cancel()
	if !already {
		c.writeReset(st.id, code)
	}
	c.sendRefund()
}

// expireBody fails st's body reads once its read deadline passed (as
// net/http does: the handler still answers; what else the client sends
// is discarded).
func (c *conn) expireBody(st *stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.recvDone || st.reset || st.discard {
		return
	}
	st.discard = true
	st.bodyErr = fmt.Errorf("h2server: request body: %w", os.ErrDeadlineExceeded)
	c.refundLocked(int64(len(st.body) - st.off))
	st.body, st.off = nil, 0
	st.cond.Broadcast()
}
