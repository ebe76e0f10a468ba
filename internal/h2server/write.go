package h2server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/h2key"
	"github.com/switchyard-dev/switchyard/internal/hpacklit"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// writeHeaders writes the answer's HEADERS frame (and CONTINUATION
// frames if the block is larger than the client's frame size). With
// addLength, a content-length of n is added when the handler set none.
func (st *stream) writeHeaders(addLength bool, n int, endStream, flush bool) error {
	c := st.c
	c.mu.Lock()
	maxFrame := int(c.peerMaxFrame)
	c.mu.Unlock()
	if endStream {
		c.releaseSlot(st)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	b := c.blockStart()
	b = hpacklit.Append(b, ":status", statusText(st.status))
	declared := st.header["Trailer"]
	hasDate := false
	var sent sentNames // the map's and AddField's names, which relayed fields do not repeat
	for k, vv := range st.header {
		if strings.HasPrefix(k, http.TrailerPrefix) || k == "Trailer" || len(declared) > 0 && declaredTrailer(declared, k) {
			continue
		}
		name := c.wireKey(k)
		switch name {
		case "", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
			continue
		case "date":
			hasDate = true
		}
		sent.add(st, name)
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue // as net/http: an invalid value is dropped, not sent
			}
			b = hpacklit.Append(b, name, v)
		}
	}
	for _, f := range st.own {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			continue
		}
		sent.add(st, f.Name)
		hasDate = hasDate || f.Name == "date"
		b = hpacklit.Append(b, f.Name, f.Value)
	}
	for _, f := range st.relayed {
		switch f.Name {
		case "", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
			continue
		}
		if sent.has(f.Name) || f.Name[0] == ':' || !httpguts.ValidHeaderFieldValue(f.Value) {
			continue
		}
		hasDate = hasDate || f.Name == "date"
		b = hpacklit.Append(b, f.Name, f.Value)
	}
	if addLength && !st.head && bodyAllowed(st.status) {
		var l [20]byte
		b = hpacklit.Append(b, "content-length", string(strconv.AppendInt(l[:0], int64(n), 10)))
	}
	if !hasDate {
		b = hpacklit.Append(b, "date", httpDate())
	}
	c.hblock = b
	return c.writeBlockLocked(st.id, maxFrame, endStream, flush)
}

// sentNames are the names writeHeaders sent from the header map and
// AddField, which relayed fields do not repeat: a few on the stack; past
// them, relayed fields of the name are taken out instead.
type sentNames struct {
	names [8]string
	n     int
}

func (s *sentNames) add(st *stream, name string) {
	switch {
	case len(st.relayed) == 0:
	case s.n == len(s.names):
		st.relayed = slices.DeleteFunc(slices.Clone(st.relayed), func(f hpack.HeaderField) bool { return f.Name == name })
	default:
		s.names[s.n] = name
		s.n++
	}
}

func (s *sentNames) has(name string) bool { return slices.Contains(s.names[:s.n], name) }

// blockStart returns hblock emptied for a new header block, which on a
// connection's first block starts with the table size update (answers
// are HPACK literals: nearly every answer carries a unique value, a
// request ID, and a dynamic table cost more than it saved). Call with
// wmu held.
func (c *conn) blockStart() []byte {
	b := c.hblock[:0]
	if !c.noTableSent {
		b, c.noTableSent = hpacklit.AppendNoTable(b), true
	}
	return b
}

// writeBlockLocked writes the header block in hblock as a HEADERS frame and
// as many CONTINUATION frames as the client's frame size asks, flushing
// them with flush. Call with wmu held.
func (c *conn) writeBlockLocked(id uint32, maxFrame int, endStream, flush bool) error {
	block := c.hblock
	first := block[:min(len(block), maxFrame)]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(first) == len(block)})
	for rest := block[len(first):]; err == nil && len(rest) > 0; {
		frag := rest[:min(len(rest), maxFrame)]
		rest = rest[len(frag):]
		err = c.fr.WriteContinuation(id, len(rest) == 0, frag)
	}
	if err == nil && flush {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
	}
	return err
}

// writeTrailers writes the trailers with END_STREAM.
func (st *stream) writeTrailers(fields []hpack.HeaderField) error {
	c := st.c
	c.mu.Lock()
	maxFrame := int(c.peerMaxFrame)
	c.mu.Unlock()
	c.releaseSlot(st)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	b := c.blockStart()
	for _, f := range fields {
		if httpguts.ValidHeaderFieldValue(f.Value) {
			b = hpacklit.Append(b, f.Name, f.Value)
		}
	}
	c.hblock = b
	return c.writeBlockLocked(st.id, maxFrame, true, true)
}

// writeData writes p as DATA frames within the client's flow-control
// windows, waiting for them to open (at most WriteTimeout); with end,
// the last frame carries END_STREAM; with flush, the frames are flushed
// after the last one.
func (st *stream) writeData(p []byte, end, flush bool) error {
	c := st.c
	for {
		n, err := st.reserve(len(p), false)
		if err == nil && n == 0 && len(p) > 0 {
			// The window is shut: what is buffered goes out before the
			// wait, the client may need it to open the window.
			c.wmu.Lock()
			if c.werr == nil {
				if err := c.bw.Flush(); err != nil {
					c.werr = err
				}
			}
			c.wmu.Unlock()
			n, err = st.reserve(len(p), true)
		}
		if err != nil {
			return err
		}
		last := n == len(p)
		if end && last {
			c.releaseSlot(st)
		}
		c.wmu.Lock()
		err = c.werr
		if err == nil {
			err = c.fr.WriteData(st.id, end && last, p[:n])
			if err == nil && last && flush {
				err = c.bw.Flush()
			}
			if err != nil {
				c.werr = err
			}
		}
		c.wmu.Unlock()
		if err != nil || last {
			return err
		}
		p = p[n:]
	}
}

// reserve takes up to want bytes of the stream's and the connection's
// send windows, and no more than a frame. With wait it waits for at least
// one byte; without, it may return 0.
func (st *stream) reserve(want int, wait bool) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if want == 0 {
		if st.reset {
			return 0, errStreamReset
		}
		return 0, nil
	}
	var timer *time.Timer
	expired := false
	for !st.reset && (st.sendWindow <= 0 || c.sendWindow <= 0) {
		if !wait {
			return 0, nil
		}
		if expired {
			st.waitingWindow = false
			c.mu.Unlock()
			c.resetStream(st, http2.ErrCodeCancel)
			c.mu.Lock()
			return 0, errWindowWait
		}
		if timer == nil {
			d := c.srv.WriteTimeout
			if d <= 0 {
				d = defaultWriteTimeout
			}
			timer = time.AfterFunc(d, func() {
				c.mu.Lock()
				expired = true
				st.cond.Broadcast()
				c.mu.Unlock()
			})
			defer timer.Stop()
		}
		st.waitingWindow = true
		st.cond.Wait()
	}
	st.waitingWindow = false
	if st.reset {
		return 0, errStreamReset
	}
	n := int64(want)
	n = min(n, st.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
	st.sendWindow -= n
	c.sendWindow -= n
	return int(n), nil
}

// wireKey is a canonical answer key as an HTTP/2 field name (lower
// case), "" when the key is not a valid field name. Call with wmu held
// or from the handler (lower is guarded by wmu).
func (c *conn) wireKey(k string) string { return h2key.Wire(k, c.lower) }

func declaredTrailer(declared []string, k string) bool {
	for _, v := range declared {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), k) {
				return true
			}
		}
	}
	return false
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// statusTexts holds the :status values 100 to 999.
var statusTexts = func() (t [900]string) {
	for i := range t {
		t[i] = strconv.Itoa(i + 100)
	}
	return t
}()

func statusText(code int) string { return statusTexts[code-100] }

// httpDate is the Date header's value for now, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &dateText{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	lastDate.Store(d)
	return d.text
}

type dateText struct {
	sec  int64
	text string
}

var lastDate atomic.Pointer[dateText]
