//go:build !race

package hdecode

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// indexedBlock returns a frame stream of two equal request blocks: every
// field of the second is in the dynamic table.
func indexedBlock(t testing.TB) []byte {
	return frames(t, block{stream: 1, fields: request}, block{stream: 3, fields: request})
}

// TestReadAllocs reads, again and again, what a proxied call brings most:
// a header block whose fields are all in the dynamic table, a PING and a
// WINDOW_UPDATE.
func TestReadAllocs(t *testing.T) {
	in := indexedBlock(t)
	first := frames(t, block{stream: 1, fields: request})
	again := append(in[len(first):len(in):len(in)],
		raw(t, rawFrame{http2.FramePing, 0, 0, []byte("12345678")}, rawFrame{http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 1, 0}})...)
	r := io.MultiReader(bytes.NewReader(first), &repeat{p: again})
	d := New(http2.NewFramer(nil, r), r, 0)
	if _, err := d.ReadFrame(); err != nil { // fills the dynamic table
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		for _, want := range []http2.FrameType{http2.FrameHeaders, http2.FramePing, http2.FrameWindowUpdate} {
			f, err := d.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Header().Type != want {
				t.Fatalf("read %v, want %v", f.Header().Type, want)
			}
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per block, PING and WINDOW_UPDATE, want 0", n)
	}
}

// repeat reads p again and again.
type repeat struct {
	p   []byte
	off int
}

func (r *repeat) Read(b []byte) (int, error) {
	n := copy(b, r.p[r.off:])
	r.off = (r.off + n) % len(r.p)
	return n, nil
}

// BenchmarkReadBlock reads a gRPC request's HEADERS frame, every field in
// the dynamic table, with x/net's readMetaFrame and with a Decoder.
func BenchmarkReadBlock(b *testing.B) {
	first := frames(b, block{stream: 1, fields: request})
	in := indexedBlock(b)
	benchRead(b, first, in[len(first):])
}

// BenchmarkReadPingAndWindowUpdate reads a PING and a WINDOW_UPDATE with
// x/net's framer and with a Decoder.
func BenchmarkReadPingAndWindowUpdate(b *testing.B) {
	benchRead(b, nil, raw(b, rawFrame{http2.FramePing, 0, 0, []byte("12345678")}, rawFrame{http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 1, 0}}))
}

// benchRead reads first once, then again over and over.
func benchRead(b *testing.B, first, again []byte) {
	bench := func(b *testing.B, read func(fr *http2.Framer, r io.Reader) func() (http2.Frame, error)) {
		r := io.MultiReader(bytes.NewReader(first), &repeat{p: again})
		next := read(http2.NewFramer(nil, r), r)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := next(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("xnet", func(b *testing.B) {
		bench(b, func(fr *http2.Framer, _ io.Reader) func() (http2.Frame, error) {
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			return fr.ReadFrame
		})
	})
	b.Run("hdecode", func(b *testing.B) {
		bench(b, func(fr *http2.Framer, r io.Reader) func() (http2.Frame, error) { return New(fr, r, 0).ReadFrame })
	})
}
