// Package hdecode decodes HTTP/2 header blocks (a HEADERS frame and its
// CONTINUATION frames) as x/net's Framer does when ReadMetaHeaders is set,
// with the same checks and the same errors, into a frame and a field list
// reused from block to block. x/net allocates the frame, the variables its
// emit closure captures and the growing field slice for every block: about
// ten allocations a block, three blocks per proxied gRPC call.
package hdecode

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Decoder decodes one connection's header blocks. It belongs to the
// connection's reader: it is not safe for concurrent use.
type Decoder struct {
	fr      *http2.Framer
	dec     *hpack.Decoder
	maxList uint32
	mh      http2.MetaHeadersFrame

	// The block being decoded.
	headersLeft, trailersLeft uint32
	sawRegular                bool
	invalid                   error
}

// New returns the decoder of fr's header blocks, with a 4 KiB dynamic
// table (the HTTP/2 default). maxList bounds a block's decoded size (RFC
// 9113 §6.5.2) and each string in it; 0 means 16 MiB, as in x/net.
// fr.ReadMetaHeaders must be nil: frames are read with d.ReadFrame, or
// each HEADERS frame fr.ReadFrame returns is handed to Read.
func New(fr *http2.Framer, maxList uint32) *Decoder {
	if maxList == 0 {
		maxList = 16 << 20
	}
	d := &Decoder{fr: fr, maxList: maxList}
	d.dec = hpack.NewDecoder(4096, d.emit)
	d.dec.SetMaxStringLength(int(min(maxList, 1<<31-1)))
	return d
}

// ReadFrame reads the framer's next frame. A HEADERS frame comes back
// decoded with its CONTINUATION frames, as a *http2.MetaHeadersFrame
// valid until the next call (see Read).
func (d *Decoder) ReadFrame() (http2.Frame, error) {
	f, err := d.fr.ReadFrame()
	hf, ok := f.(*http2.HeadersFrame)
	if !ok || err != nil {
		return f, err
	}
	mh, err := d.Read(hf)
	if err != nil {
		return nil, err
	}
	return mh, nil
}

// Read decodes the block hf starts, reading its CONTINUATION frames from
// the framer. The frame it returns, and its Fields, are valid until the
// next Read. Its errors are those of Framer.ReadFrame with
// ReadMetaHeaders set: a StreamError (PROTOCOL_ERROR) for an invalid
// field or pseudo-header field, whose block was still decoded whole (the
// connection goes on); a ConnectionError, or the framer's read error,
// otherwise. A block over the size limit is not an error: Truncated is
// set and Fields holds what fitted.
func (d *Decoder) Read(hf *http2.HeadersFrame) (*http2.MetaHeadersFrame, error) {
	clear(d.mh.Fields) // drop the last block's strings
	d.mh = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: d.mh.Fields[:0]}
	d.headersLeft, d.trailersLeft = d.maxList, d.maxList
	d.sawRegular, d.invalid = false, nil
	d.dec.SetEmitEnabled(true)

	var hc interface {
		HeaderBlockFragment() []byte
		HeadersEnded() bool
	} = hf
	for {
		frag := hc.HeaderBlockFragment()
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
		if hc.HeadersEnded() {
			break
		}
		f, err := d.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		hc = f.(*http2.ContinuationFrame) // the framer checks the frame order
	}
	if err := d.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if d.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: d.invalid}
	}
	if err := checkPseudos(d.mh.PseudoFields()); err != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return &d.mh, nil
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
