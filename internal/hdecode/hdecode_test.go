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
		// PING and WINDOW_UPDATE, valid and not.
		raw(t, rawFrame{http2.FramePing, 0, 0, []byte("12345678")}, rawFrame{http2.FramePing, http2.FlagPingAck, 0, []byte("abcdefgh")},
			rawFrame{http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 1, 0}}, rawFrame{http2.FrameWindowUpdate, 0, 5, []byte{0x80, 0, 0, 7}}),
		raw(t, rawFrame{http2.FramePing, 0, 1, []byte("12345678")}),
		raw(t, rawFrame{http2.FramePing, 0, 0, []byte("1234567")}),
		raw(t, rawFrame{http2.FrameWindowUpdate, 0, 3, []byte{0, 0, 0, 0}}, rawFrame{http2.FrameWindowUpdate, 0, 0, []byte{0x80, 0, 0, 0}}),
		raw(t, rawFrame{http2.FrameWindowUpdate, 0, 3, []byte{0, 0, 0, 1, 0}}),
		raw(t, rawFrame{http2.FramePing, 0, 0, make([]byte, testMaxFrame+1)}),
		// HEADERS padded, with a priority, both; too short for either; on
		// stream 0; the block cut by another frame or another stream's
		// CONTINUATION; a CONTINUATION alone.
		raw(t, rawFrame{http2.FrameHeaders, http2.FlagHeadersPadded | http2.FlagHeadersEndHeaders, 1, append([]byte{3}, append(hpackOf(t, request), 0, 0, 0)...)},
			rawFrame{http2.FrameHeaders, http2.FlagHeadersPriority | http2.FlagHeadersEndHeaders, 3, append([]byte{0x80, 0, 0, 1, 200}, hpackOf(t, request)...)},
			rawFrame{http2.FrameHeaders, http2.FlagHeadersPadded | http2.FlagHeadersPriority | http2.FlagHeadersEndHeaders | http2.FlagHeadersEndStream, 5, append([]byte{1, 0, 0, 0, 3, 16}, append(hpackOf(t, request), 0)...)}),
		raw(t, rawFrame{http2.FrameHeaders, http2.FlagHeadersPadded | http2.FlagHeadersEndHeaders, 1, nil}),
		raw(t, rawFrame{http2.FrameHeaders, http2.FlagHeadersPriority | http2.FlagHeadersEndHeaders, 1, []byte{0, 0, 0, 1}}),
		raw(t, rawFrame{http2.FrameHeaders, http2.FlagHeadersPadded | http2.FlagHeadersEndHeaders, 1, []byte{9, 0x82}}),
		raw(t, rawFrame{http2.FrameHeaders, http2.FlagHeadersEndHeaders, 0, hpackOf(t, request)}),
		raw(t, rawFrame{http2.FrameHeaders, 0, 1, hpackOf(t, request)[:4]}, rawFrame{http2.FramePing, 0, 0, []byte("12345678")}),
		raw(t, rawFrame{http2.FrameHeaders, 0, 1, hpackOf(t, request)[:4]}, rawFrame{http2.FrameContinuation, http2.FlagContinuationEndHeaders, 3, hpackOf(t, request)[4:]}),
		raw(t, rawFrame{http2.FrameContinuation, http2.FlagContinuationEndHeaders, 1, hpackOf(t, request)}),
		// The same bytes, the newest dynamic entry (index 62), before and
		// after blocks that change the table: a remembered block must not
		// outlive the table it was decoded with.
		raw(t, hdr(1, lit(0x40, "x-a", "1")), hdr(3, []byte{0xbe}), hdr(5, []byte{0xbe}),
			hdr(7, lit(0x40, "x-b", "2")), hdr(9, []byte{0xbe}), hdr(11, []byte{0xbe}),
			hdr(13, lit(0x00, "x-c", "3"), []byte{0xbe}), hdr(15, lit(0x00, "x-c", "3"), []byte{0xbe}),
			hdr(17, []byte{0x20}), hdr(19, []byte{0xbe})),
		raw(t, hdr(1, lit(0x40, "x-a", "1")), hdr(3, []byte{0xbe}), hdr(5, []byte{0x3f, 0xe1, 0x1f}, []byte{0xbe}),
			hdr(7, []byte{0xbe}), hdr(9, lit(0x40, "x-big", strings.Repeat("v", 4000))), hdr(11, []byte{0xbe})),
	}
}

// hdr is a HEADERS frame on stream whose block is the fragments given,
// whole.
func hdr(stream uint32, frags ...[]byte) rawFrame {
	return rawFrame{http2.FrameHeaders, http2.FlagHeadersEndHeaders, stream, bytes.Join(frags, nil)}
}

// lit is a literal field with a literal name, first byte first (0x40
// indexed, 0x00 not, 0x10 never), its strings not Huffman-coded.
func lit(first byte, name, value string) []byte {
	b := append([]byte{first, byte(len(name))}, name...)
	if len(value) < 127 {
		return append(append(b, byte(len(value))), value...)
	}
	n := len(value) - 127
	b = append(b, 127)
	for ; n >= 128; n >>= 7 {
		b = append(b, byte(n&0x7f|0x80))
	}
	return append(append(b, byte(n)), value...)
}

// rawFrame is one frame as it goes on the wire, valid or not.
type rawFrame struct {
	typ     http2.FrameType
	flags   http2.Flags
	stream  uint32
	payload []byte
}

func raw(t testing.TB, frames ...rawFrame) []byte {
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	for _, f := range frames {
		if err := fr.WriteRawFrame(f.typ, f.flags, f.stream, f.payload); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// hpackOf encodes fields with a fresh encoder (no dynamic table entries).
func hpackOf(t testing.TB, fs []hpack.HeaderField) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range fs {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// outcome is what reading a frame stream gave, in a form both readers'
// results compare in; detail is the reader's ErrorDetail.
func outcome(f http2.Frame, err, detail error) string {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stream error %d %v: %v", se.StreamID, se.Code, se.Cause)
	case errors.As(err, &ce):
		return fmt.Sprintf("connection error %v (%v)", http2.ErrCode(ce), detail)
	case err != nil:
		return "error: " + err.Error()
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return fmt.Sprintf("headers %d end=%v priority=%+v truncated=%v %q", f.StreamID, f.StreamEnded(), f.Priority, f.Truncated, f.Fields)
	case *http2.PingFrame:
		return fmt.Sprintf("%v data=%x", f.Header(), f.Data)
	case *http2.WindowUpdateFrame:
		return fmt.Sprintf("%v increment=%d", f.Header(), f.Increment)
	}
	return fmt.Sprintf("frame %v", f.Header())
}

// testMaxFrame is the largest frame both readers take, so that the fuzzer
// reaches the size check.
const testMaxFrame = 1 << 12

// compare reads in with x/net's readMetaFrame and with a Decoder and
// fails on the first frame where they differ.
func compare(t *testing.T, in []byte) {
	want := http2.NewFramer(nil, bytes.NewReader(in))
	want.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	want.MaxHeaderListSize = testMaxList
	want.SetMaxReadFrameSize(testMaxFrame)
	r := bytes.NewReader(in)
	fr := http2.NewFramer(nil, r)
	fr.MaxHeaderListSize = testMaxList
	fr.SetMaxReadFrameSize(testMaxFrame)
	d := New(fr, r, testMaxList)
	for i := 0; ; i++ {
		wf, werr := want.ReadFrame()
		f, err := d.ReadFrame()
		w, g := outcome(wf, werr, want.ErrorDetail()), outcome(f, err, d.ErrorDetail())
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
	r := bytes.NewReader(in)
	d := New(http2.NewFramer(nil, r), r, 0)
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

// TestRepeatedBlockRemembered: a block whose fields are all in the
// dynamic table is remembered, and served from memory when its bytes come
// again; one that adds to the table makes every remembered block go; one
// with a never-indexed field is not remembered.
func TestRepeatedBlockRemembered(t *testing.T) {
	first := frames(t, block{stream: 1, fields: request})
	in := frames(t, block{stream: 1, fields: request}, block{stream: 3, fields: request}, block{stream: 5, fields: request},
		block{stream: 7, fields: fields(":status", "200", "x-new", "1")})
	indexed := in[len(first)+9 : len(first)+9+int(in[len(first)+2])] // the second block's fragment (a 9-byte frame header, then the fragment)
	r := bytes.NewReader(in)
	d := New(http2.NewFramer(nil, r), r, 0)
	var got []string
	for i := range 4 {
		f, err := d.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			got = append(got, fmt.Sprint(f.(*http2.MetaHeadersFrame).Fields))
		}
		if remembered := d.lookup(indexed) != nil; remembered != (i == 1 || i == 2) {
			t.Errorf("after block %d: remembered %v", i, remembered)
		}
	}
	if want := fmt.Sprint(request); got[0] != want || got[1] != want || got[2] != want {
		t.Errorf("fields %q, want %q three times", got, want)
	}

	// A block with a never-indexed field (a credential) is not
	// remembered, nor does it make the others go.
	secret := lit(0x10, "authorization", "Bearer s3cret")
	r = bytes.NewReader(raw(t, hdr(1, []byte{0x82}), hdr(3, []byte{0x82}, secret), hdr(5, []byte{0x82}, secret)))
	d = New(http2.NewFramer(nil, r), r, 0)
	for i := range 3 {
		f, err := d.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.(*http2.MetaHeadersFrame).Fields); n != 1+min(i, 1) {
			t.Errorf("block %d: %d fields", i, n)
		}
	}
	if d.lookup(append([]byte{0x82}, secret...)) != nil || d.lookup([]byte{0x82}) == nil {
		t.Error("the never-indexed block was remembered, or the plain one forgotten")
	}
}
