//go:build !race

package hdecode

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// indexedBlock returns a framer positioned at the second of two equal
// request blocks: every field of the second is in the dynamic table.
func indexedBlock(t testing.TB) (*http2.Framer, []byte) {
	in := frames(t, block{stream: 1, fields: request}, block{stream: 3, fields: request})
	fr := http2.NewFramer(nil, bytes.NewReader(in))
	return fr, in
}

func TestReadAllocs(t *testing.T) {
	fr, _ := indexedBlock(t)
	d := New(fr, 0)
	if _, err := d.ReadFrame(); err != nil { // fills the dynamic table
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	hf := f.(*http2.HeadersFrame)
	n := testing.AllocsPerRun(100, func() {
		if _, err := d.Read(hf); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per block of indexed fields, want 0", n)
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
	_, in := indexedBlock(b)
	bench := func(b *testing.B, ready func(fr *http2.Framer) func() (http2.Frame, error)) {
		fr := http2.NewFramer(nil, io.MultiReader(bytes.NewReader(first), &repeat{p: in[len(first):]}))
		read := ready(fr)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := read(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("xnet", func(b *testing.B) {
		bench(b, func(fr *http2.Framer) func() (http2.Frame, error) {
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			return fr.ReadFrame
		})
	})
	b.Run("hdecode", func(b *testing.B) {
		bench(b, func(fr *http2.Framer) func() (http2.Frame, error) { return New(fr, 0).ReadFrame })
	})
}
