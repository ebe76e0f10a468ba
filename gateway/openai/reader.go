package openai

import (
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
	for {
		if r.off < len(r.out) {
			n := copy(p, r.out[r.off:])
			r.off += n
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		r.out, r.off = r.out[:0], 0
		n, err := r.src.Read(p)
		if n > 0 {
			r.out = r.Filter(r.out, p[:n], r.now())
		}
		if err != nil {
			r.out = r.Flush(r.out)
			r.err = err
		}
	}
}
