package hdecode

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// testMaxList is small, so that the fuzzer reaches the size limits.
const testMaxList = 300

// block is one header block to encode: its fields, split into frames of
// at most split bytes of fragment (0: one frame).
type block struct {
	stream uint32
	end    bool
	split  int
	fields []hpack.HeaderField
}

// frames encodes blocks as HEADERS and CONTINUATION frames with one
// HPACK encoder (dynamic table and Huffman coding on, as grpc-go sends).
func frames(t testing.TB, blocks ...block) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&hb)
	for _, b := range blocks {
		hb.Reset()
		for _, f := range b.fields {
			if err := enc.WriteField(f); err != nil {
				t.Fatal(err)
			}
		}
		frag := hb.Bytes()
		first := frag
		if b.split > 0 && len(frag) > b.split {
			first = frag[:b.split]
		}
		rest := frag[len(first):]
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: b.stream, BlockFragment: first, EndStream: b.end, EndHeaders: len(rest) == 0}); err != nil {
			t.Fatal(err)
		}
		for len(rest) > 0 {
			n := min(len(rest), b.split)
			if err := fr.WriteContinuation(b.stream, n == len(rest), rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	return out.Bytes()
}

func fields(kv ...string) []hpack.HeaderField {
	var out []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

var request = fields(":method", "POST", ":scheme", "http", ":path", "/inference.GRPCInferenceService/ModelInfer",
	":authority", "gw.test", "content-type", "application/grpc", "te", "trailers", "grpc-timeout", "5S")

// seeds are frame streams for the comparison with x/net: valid blocks,
// blocks split over CONTINUATION frames, and each way a block is refused
// or truncated.
func seeds(t testing.TB) [][]byte {
	long := strings.Repeat("v", 2*testMaxList)
	return [][]byte{
		frames(t, block{stream: 1, end: true, fields: request}, block{stream: 3, end: true, fields: request}),
		frames(t, block{stream: 1, split: 7, fields: request}),
		frames(t, block{stream: 1, fields: fields(":status", "200", "content-type", "application/grpc")},
			block{stream: 1, end: true, fields: fields("grpc-status", "0", "grpc-message", "")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", "X-Upper", "1")}),
		frames(t, block{stream: 1, fields: fields("a", "1", ":path", "/")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", "bad", "a\x00b")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", ":method", "GET")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", ":status", "200")}),
		frames(t, block{stream: 1, fields: fields(":bogus", "1")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", "x-big", long[:testMaxList-40], "x-more", "1")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", "x-huge", long)}),
		frames(t, block{stream: 1, split: 16, fields: fields(":method", "GET", "x-huge", long)}),
		frames(t, block{stream: 1, split: 5, fields: fields(":method", "GET", "BAD", "1", "x", "2")}),
		frames(t, block{stream: 1, fields: fields(":method", "GET", "trailer", "a, b, c, d, e, f, g, h")}),
		frames(t, block{stream: 1, fields: fields("", "1")}),
	}
}

// outcome is what reading a frame stream gave, in a form both readers'
// results compare in.
func outcome(f http2.Frame, err error) string {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stream error %d %v: %v", se.StreamID, se.Code, se.Cause)
	case errors.As(err, &ce):
		return fmt.Sprintf("connection error %v", http2.ErrCode(ce))
	case err != nil:
		return "error: " + err.Error()
	}
	mh, ok := f.(*http2.MetaHeadersFrame)
	if !ok {
		return fmt.Sprintf("frame %v", f.Header())
	}
	return fmt.Sprintf("headers %d end=%v truncated=%v %q", mh.StreamID, mh.StreamEnded(), mh.Truncated, mh.Fields)
}

// compare reads in with x/net's readMetaFrame and with a Decoder and
// fails on the first frame where they differ.
func compare(t *testing.T, in []byte) {
	want := http2.NewFramer(nil, bytes.NewReader(in))
	want.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	want.MaxHeaderListSize = testMaxList
	fr := http2.NewFramer(nil, bytes.NewReader(in))
	fr.MaxHeaderListSize = testMaxList
	d := New(fr, testMaxList)
	for i := 0; ; i++ {
		wf, werr := want.ReadFrame()
		f, err := d.ReadFrame()
		w, g := outcome(wf, werr), outcome(f, err)
		if w != g {
			t.Fatalf("frame %d: x/net %s, hdecode %s", i, w, g)
		}
		var se http2.StreamError
		if werr != nil && !errors.As(werr, &se) {
			return // the connection ends
		}
	}
}

func TestSameAsXNet(t *testing.T) {
	for i, in := range seeds(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { compare(t, in) })
	}
}

func FuzzSameAsXNet(f *testing.F) {
	for _, in := range seeds(f) {
		f.Add(in)
	}
	f.Fuzz(compare)
}

// TestFieldsReused checks that the field list is reused: a block read
// after another does not keep the first one's fields.
func TestFieldsReused(t *testing.T) {
	in := frames(t, block{stream: 1, fields: request}, block{stream: 3, fields: fields(":status", "200")})
	fr := http2.NewFramer(nil, bytes.NewReader(in))
	d := New(fr, 0)
	var got []string
	for range 2 {
		f, err := d.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		mh := f.(*http2.MetaHeadersFrame)
		got = append(got, fmt.Sprint(len(mh.Fields), cap(mh.Fields) >= len(request)))
	}
	if got[0] != fmt.Sprint(len(request), true) || got[1] != "1 true" {
		t.Errorf("fields and reuse per block: %v", got)
	}
}
