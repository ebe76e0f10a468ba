// Package hdecode reads HTTP/2 frames for a connection's reader: header
// blocks (a HEADERS frame and its CONTINUATION frames) decoded as x/net's
// Framer does when ReadMetaHeaders is set, with the same checks and the
// same errors, and the frames a proxied call brings most often (HEADERS,
// CONTINUATION, PING, WINDOW_UPDATE) parsed into frames reused from one
// read to the next. x/net allocates each of those frames, and for a block
// the variables its emit closure captures and the growing field slice:
// about ten allocations a block, three blocks and two or three PING and
// WINDOW_UPDATE frames per proxied gRPC call. The other frame types are
// the framer's.
//
// A connection's calls repeat a few header blocks byte for byte, all
// indexed once the dynamic table holds their fields: the last few blocks
// that left the table as it was are remembered with their fields (not
// one with a field its sender marked never-indexed, a credential), and
// the same bytes are not decoded again until a block that may change the
// table comes (a fifth of the cost of decoding a gRPC request's block).
package hdecode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Decoder reads one connection's frames. It belongs to the connection's
// reader: it is not safe for concurrent use.
type Decoder struct {
	fr      *http2.Framer
	r       io.Reader // fr's reader: the payloads of the frames parsed here
	dec     *hpack.Decoder
	maxList uint32
	payload []byte // the last payload read here (x/net keeps its own the same way)
	detail  error  // why the last connection error was raised here (ErrorDetail)

	// The frames returned, reused.
	mh   http2.MetaHeadersFrame
	hf   http2.HeadersFrame
	ping http2.PingFrame
	wu   http2.WindowUpdateFrame

	// The block being decoded.
	headersLeft, trailersLeft uint32
	sawRegular                bool
	invalid                   error

	// Blocks decoded lately that left the dynamic table as it was, with
	// their fields: the same bytes decode to the same fields until a
	// block that may change the table comes.
	seen     [seenBlocks]seenBlock
	seenNext int // the entry replaced next
}

// seenBlock is one block remembered: its fragment and its fields.
type seenBlock struct {
	frag   []byte
	fields []hpack.HeaderField
	valid  bool // frag decodes to fields with the table as it is
}

// A connection's calls repeat a few header blocks (a client's requests,
// a node's answers and trailers), each of them all indexed once the
// dynamic table holds their fields. Blocks up to maxSeenBlock bytes and
// maxSeenFields fields are remembered, seenBlocks of them.
const (
	seenBlocks    = 4
	maxSeenBlock  = 256
	maxSeenFields = 16
)

// New returns the reader of fr's frames, which fr reads from r, with a
// 4 KiB dynamic table (the HTTP/2 default). maxList bounds a block's
// decoded size (RFC 9113 §6.5.2) and each string in it; 0 means 16 MiB,
// as in x/net. fr.ReadMetaHeaders must be nil, and every frame must be
// read with d.ReadFrame: d and fr share the frame order and size checks
// (fr.ReadFrameHeader), and d reads some payloads from r itself.
func New(fr *http2.Framer, r io.Reader, maxList uint32) *Decoder {
	if maxList == 0 {
		maxList = 16 << 20
	}
	d := &Decoder{fr: fr, r: r, maxList: maxList}
	d.dec = hpack.NewDecoder(4096, d.emit)
	d.dec.SetMaxStringLength(int(min(maxList, 1<<31-1)))
	return d
}

// ReadFrame reads the next frame; its errors are those of Framer.ReadFrame
// with ReadMetaHeaders set. A HEADERS frame comes back decoded with its
// CONTINUATION frames, as a *http2.MetaHeadersFrame (see readBlock). It,
// and the PING and WINDOW_UPDATE frames, are valid until the next call;
// the other types are the framer's own and valid as long as it says.
func (d *Decoder) ReadFrame() (http2.Frame, error) {
	d.detail = nil
	fh, err := d.fr.ReadFrameHeader() // checks the frame's size and order
	if err != nil {
		return nil, err
	}
	switch fh.Type {
	case http2.FrameHeaders:
		p, err := d.readPayload(fh)
		if err != nil {
			return nil, err
		}
		frag, err := d.parseHeaders(fh, p)
		if err != nil {
			return nil, err
		}
		return d.readBlock(frag)
	case http2.FramePing:
		p, err := d.readPayload(fh)
		if err != nil {
			return nil, err
		}
		if len(p) != 8 {
			return nil, http2.ConnectionError(http2.ErrCodeFrameSize)
		}
		if fh.StreamID != 0 {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		d.ping = http2.PingFrame{FrameHeader: fh}
		copy(d.ping.Data[:], p)
		return &d.ping, nil
	case http2.FrameWindowUpdate:
		p, err := d.readPayload(fh)
		if err != nil {
			return nil, err
		}
		if len(p) != 4 {
			return nil, http2.ConnectionError(http2.ErrCodeFrameSize)
		}
		inc := binary.BigEndian.Uint32(p) & 0x7fffffff // the reserved bit is ignored
		if inc == 0 {
			// A stream error on a stream, a connection error on the
			// connection's window (RFC 9113 §6.9).
			if fh.StreamID == 0 {
				return nil, http2.ConnectionError(http2.ErrCodeProtocol)
			}
			return nil, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeProtocol}
		}
		d.wu = http2.WindowUpdateFrame{FrameHeader: fh, Increment: inc}
		return &d.wu, nil
	}
	return d.fr.ReadFrameForHeader(fh)
}

// ErrorDetail is the reason of the last connection error ReadFrame
// returned, for the GOAWAY's debug data (Framer.ErrorDetail for the
// frames the framer parsed).
func (d *Decoder) ErrorDetail() error {
	if d.detail != nil {
		return d.detail
	}
	return d.fr.ErrorDetail()
}

// readPayload reads the payload of the frame whose header was just read.
// It is valid until the next call.
func (d *Decoder) readPayload(fh http2.FrameHeader) ([]byte, error) {
	n := int(fh.Length) // at most the framer's read limit: ReadFrameHeader checked it
	if cap(d.payload) < n {
		d.payload = make([]byte, n)
	}
	p := d.payload[:n]
	if _, err := io.ReadFull(d.r, p); err != nil {
		return nil, err
	}
	return p, nil
}

// connError is a connection error with its reason kept for ErrorDetail.
func (d *Decoder) connError(code http2.ErrCode, reason string) error {
	d.detail = errors.New(reason)
	return http2.ConnectionError(code)
}

// parseHeaders reads a HEADERS frame's payload p into d.hf and returns its
// block fragment, as x/net's parseHeadersFrame does.
func (d *Decoder) parseHeaders(fh http2.FrameHeader, p []byte) ([]byte, error) {
	if fh.StreamID == 0 {
		return nil, d.connError(http2.ErrCodeProtocol, "HEADERS frame with stream ID 0")
	}
	d.hf = http2.HeadersFrame{FrameHeader: fh}
	var pad int
	if fh.Flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 {
			return nil, io.ErrUnexpectedEOF
		}
		pad, p = int(p[0]), p[1:]
	}
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return nil, io.ErrUnexpectedEOF
		}
		v := binary.BigEndian.Uint32(p)
		d.hf.Priority = http2.PriorityParam{StreamDep: v & 0x7fffffff, Exclusive: v&0x80000000 != 0, Weight: p[4]}
		p = p[5:]
	}
	if len(p) < pad {
		return nil, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeProtocol}
	}
	return p[:len(p)-pad], nil
}

// readBlock decodes the block whose HEADERS frame is in d.hf, with first
// its fragment, reading its CONTINUATION frames. The frame it returns,
// and its Fields, are valid until the next read; its HeadersFrame's
// HeaderBlockFragment is empty. Its errors are those of Framer.ReadFrame
// with ReadMetaHeaders set: a StreamError (PROTOCOL_ERROR) for an invalid
// field or pseudo-header field, whose block was still decoded whole (the
// connection goes on); a ConnectionError, or the read error, otherwise. A
// block over the size limit is not an error: Truncated is set and Fields
// holds what fitted.
func (d *Decoder) readBlock(first []byte) (*http2.MetaHeadersFrame, error) {
	clear(d.mh.Fields) // drop the last block's strings
	d.mh = http2.MetaHeadersFrame{HeadersFrame: &d.hf, Fields: d.mh.Fields[:0]}
	var keeps, secret bool
	if d.hf.HeadersEnded() && len(first) <= maxSeenBlock {
		if e := d.lookup(first); e != nil {
			d.mh.Fields = append(d.mh.Fields, e.fields...)
			return &d.mh, nil
		}
		keeps, secret = keepsTable(first)
	}
	if !keeps {
		d.forget() // this block may change the dynamic table
	}
	d.headersLeft, d.trailersLeft = d.maxList, d.maxList
	d.sawRegular, d.invalid = false, nil
	d.dec.SetEmitEnabled(true)

	frag, ended := first, d.hf.HeadersEnded()
	for {
		// A sender far over the limit is not decoded: more than twice
		// the bytes still allowed, or anything once both budgets are 0.
		if int64(len(frag)) > 2*int64(d.headersLeft+d.trailersLeft) {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		// Nor is a CONTINUATION after an invalid field: the sizes are no
		// longer counted.
		if d.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := d.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		// The framer checks that a CONTINUATION of this block's stream
		// (not 0: a HEADERS frame on 0 was refused) comes next.
		fh, err := d.fr.ReadFrameHeader()
		if err != nil {
			return nil, err
		}
		if frag, err = d.readPayload(fh); err != nil {
			return nil, err
		}
		ended = fh.Flags.Has(http2.FlagContinuationEndHeaders)
	}
	if err := d.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if d.invalid != nil {
		return nil, http2.StreamError{StreamID: d.hf.StreamID, Code: http2.ErrCodeProtocol, Cause: d.invalid}
	}
	if err := checkPseudos(d.mh.PseudoFields()); err != nil {
		return nil, http2.StreamError{StreamID: d.hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	if keeps && !secret && !d.mh.Truncated && len(d.mh.Fields) <= maxSeenFields {
		d.remember(first, d.mh.Fields)
	}
	return &d.mh, nil
}

// lookup returns the remembered block whose fragment is frag, or nil.
func (d *Decoder) lookup(frag []byte) *seenBlock {
	for i := range d.seen {
		if e := &d.seen[i]; e.valid && string(e.frag) == string(frag) {
			return e
		}
	}
	return nil
}

// remember keeps a block that decoded to fields, valid and whole, and
// left the dynamic table as it was. Its entry's storage is reused.
func (d *Decoder) remember(frag []byte, fields []hpack.HeaderField) {
	e := &d.seen[d.seenNext]
	d.seenNext = (d.seenNext + 1) % seenBlocks
	e.frag = append(e.frag[:0], frag...)
	clear(e.fields)
	e.fields = append(e.fields[:0], fields...)
	e.valid = true
}

// forget drops every remembered block (their storage is kept).
func (d *Decoder) forget() {
	for i := range d.seen {
		e := &d.seen[i]
		if e.valid {
			clear(e.fields) // drop the strings
			e.valid = false
		}
	}
}

// keepsTable reports whether decoding the block fragment p leaves the
// dynamic table as it is: p holds only indexed fields and literals
// without indexing or never indexed (RFC 7541 §6.1, §6.2.2, §6.2.3), no
// literal with incremental indexing and no table size update. A
// malformed fragment reports false (the decoder says what is wrong).
// secret reports a never-indexed field: its sender marked it sensitive
// (a credential), and such a block is not remembered.
func keepsTable(p []byte) (keeps, secret bool) {
	for len(p) > 0 {
		var ok bool
		switch b := p[0]; {
		case b&0x80 != 0: // indexed
			if _, p, ok = hpackInt(p, 7); !ok {
				return false, false
			}
		case b&0xe0 == 0: // literal without indexing (0000), never indexed (0001)
			secret = secret || b&0x10 != 0
			var idx uint64
			if idx, p, ok = hpackInt(p, 4); !ok {
				return false, false
			}
			if idx == 0 { // a literal name
				if p, ok = skipString(p); !ok {
					return false, false
				}
			}
			if p, ok = skipString(p); !ok {
				return false, false
			}
		default: // literal with incremental indexing (01), size update (001)
			return false, false
		}
	}
	return true, secret
}

// hpackInt reads an integer with an n-bit prefix (RFC 7541 §5.1) from the
// start of p and returns the rest.
func hpackInt(p []byte, n uint) (v uint64, rest []byte, ok bool) {
	mask := uint64(1)<<n - 1
	v = uint64(p[0]) & mask
	p = p[1:]
	if v < mask {
		return v, p, true
	}
	for shift := uint(0); shift < 28; shift += 7 { // four more bytes at most: far beyond any size here
		if len(p) == 0 {
			return 0, nil, false
		}
		b := p[0]
		p = p[1:]
		v += uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v, p, true
		}
	}
	return 0, nil, false
}

// skipString skips a string literal (RFC 7541 §5.2).
func skipString(p []byte) ([]byte, bool) {
	if len(p) == 0 {
		return nil, false
	}
	n, p, ok := hpackInt(p, 7)
	if !ok || n > uint64(len(p)) {
		return nil, false
	}
	return p[n:], true
}

// emit takes each decoded field: it checks it, counts its size and keeps
// it, or stops keeping fields after an invalid one or past the limit.
func (d *Decoder) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		d.invalid = fmt.Errorf("invalid header field value for %q", hf.Name) // not the value: it may be a secret
	}
	if strings.HasPrefix(hf.Name, ":") {
		if d.sawRegular {
			d.invalid = errPseudoAfterRegular
		}
	} else {
		d.sawRegular = true
		if !validWireName(hf.Name) {
			d.invalid = fmt.Errorf("invalid header field name %q", hf.Name)
		}
	}
	if d.invalid != nil {
		d.dec.SetEmitEnabled(false)
		return
	}
	left, size := &d.headersLeft, hf.Size()
	if hf.Name == "trailer" {
		// Each name it announces counts as a field of its own, as in x/net.
		left = &d.trailersLeft
		n := uint32(strings.Count(hf.Value, ",") + 1)
		size = uint32(len(hf.Value)) - n + 1 + n*hpack.HeaderField{}.Size()
	}
	if size > *left {
		d.dec.SetEmitEnabled(false)
		d.mh.Truncated = true
		d.headersLeft, d.trailersLeft = 0, 0
		return
	}
	*left -= size
	d.mh.Fields = append(d.mh.Fields, hf)
}

var (
	errPseudoAfterRegular   = errors.New("pseudo header field after regular")
	errMixPseudoHeaderTypes = errors.New("mix of request and response pseudo headers")
)

// validWireName reports whether a field name may be sent: a token, in
// lower case.
func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}

// checkPseudos checks a block's pseudo-header fields: known names, none
// twice, not both a request's and a response's.
func checkPseudos(pf []hpack.HeaderField) error {
	var isRequest, isResponse bool
	for i, hf := range pf {
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			isRequest = true
		case ":status":
			isResponse = true
		default:
			return fmt.Errorf("invalid pseudo-header %q", hf.Name)
		}
		for _, prev := range pf[:i] {
			if hf.Name == prev.Name {
				return fmt.Errorf("duplicate pseudo-header %q", hf.Name)
			}
		}
	}
	if isRequest && isResponse {
		return errMixPseudoHeaderTypes
	}
	return nil
}
