package openai

import (
	"errors"
	"io"
	"time"
)

// Reader is a Stream over an io.Reader: Read hands the client whole
// events as soon as a read from the node completes one, and never returns
// (0, nil). At the end of the node's stream (any error, io.EOF included)
// it first returns the bytes of an unfinished last event, then the error.
//
// The zero Reader is not ready: call Reset. It reads into the caller's
// buffer and keeps what does not fit (at most one buffer plus one held
// event) for the next Read; it allocates nothing once warm. Not safe for
// concurrent use.
type Reader struct {
	Stream
	src io.Reader
	now func() time.Time
	out []byte // filtered bytes not yet returned
	off int
	err error // src's error, returned once out is drained
}

// Reset readies r to relay src with o. now is the clock (time.Now when
// nil).
func (r *Reader) Reset(src io.Reader, o StreamOptions, now func() time.Time) {
	r.Stream.Reset(o)
	if now == nil {
		now = time.Now
	}
	r.src, r.now, r.out, r.off, r.err = src, now, r.out[:0], 0, nil
}

// Read reads the client's next bytes.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.off == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		r.out, r.off = r.out[:0], 0
		n, err := r.src.Read(p)
		r.filter(p[:n], err)
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// Next is Read without the caller's buffer, for a source that lends its
// bytes (an HTTP node's streamed body, upstream.Body.Next): the client's
// next bytes as a slice of r's own buffer, valid until the next call. At
// the end it returns no bytes and the source's error (io.EOF included).
func (r *Reader) Next() ([]byte, error) {
	src, ok := r.src.(interface{ Next() ([]byte, error) })
	if !ok {
		return nil, errNoNext
	}
	for r.off == len(r.out) {
		if r.err != nil {
			return nil, r.err
		}
		r.out, r.off = r.out[:0], 0
		p, err := src.Next()
		r.filter(p, err)
	}
	p := r.out[r.off:]
	r.off = len(r.out)
	return p, nil
}

var errNoNext = errors.New("openai: Next on a Reader whose source does not lend its bytes")

// filter adds the client's share of the source's bytes p to r.out; at the
// source's end (err) it flushes an unfinished last event and keeps err.
func (r *Reader) filter(p []byte, err error) {
	if len(p) > 0 {
		r.out = r.Filter(r.out, p, r.now())
	}
	if err != nil {
		r.out = r.Flush(r.out)
		r.err = err
	}
}
