package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/valyala/fasthttp"
)

// readAllNext drains b with Next, as a relay does.
func readAllNext(b *Body) ([]byte, error) {
	var out []byte
	for {
		p, err := b.Next()
		out = append(out, p...)
		if err != nil {
			return out, err
		}
	}
}

// TestBodyFraming: each framing's clean end, its cut end and its broken
// forms, read with Next and with Read, from a reader that hands out one
// byte at a time (so every boundary falls between two reads) and from one
// that hands out everything at once.
func TestBodyFraming(t *testing.T) {
	cases := []struct {
		name     string
		length   int // fasthttp's ContentLength: -1 chunked, -2 until close
		wire     string
		body     string
		err      error // nil: io.EOF
		complete bool
	}{
		{"fixed", 5, "hello", "hello", nil, true},
		{"fixed, empty", 0, "", "", nil, true},
		{"fixed, cut", 8, "hello", "hello", io.ErrUnexpectedEOF, false},
		{"fixed, next response left alone", 5, "helloHTTP/1.1 200 OK\r\n", "hello", nil, true},
		{"chunked", -1, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", nil, true},
		{"chunked, upper-case hex and extension", -1, "A;name=v\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil, true},
		{"chunked, blank after size", -1, "5 \r\nhello\r\n0\r\n\r\n", "hello", nil, true},
		{"chunked, trailer", -1, "5\r\nhello\r\n0\r\nX-Tokens: 3\r\nX-Other: a\r\n\r\n", "hello", nil, true},
		{"chunked, cut inside data", -1, "5\r\nhel", "hel", io.ErrUnexpectedEOF, false},
		{"chunked, cut before the terminal chunk", -1, "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF, false},
		{"chunked, cut in the trailer", -1, "5\r\nhello\r\n0\r\n", "hello", io.ErrUnexpectedEOF, false},
		{"chunked, no CRLF after data", -1, "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n", "hello", ErrBadChunk, false},
		{"chunked, bare LF size line", -1, "5\nhello\r\n0\r\n\r\n", "", ErrBadChunk, false},
		{"chunked, no size", -1, ";x\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk, false},
		{"chunked, junk after size", -1, "5x\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk, false},
		{"chunked, blank before extension", -1, "5 ;x\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk, false},
		{"chunked, size too large", -1, "1000000000000000\r\n", "", ErrBadChunk, false},
		{"chunked, bare LF trailer", -1, "5\r\nhello\r\n0\r\nX: 1\n\r\n", "hello", ErrBadChunk, false},
		{"until close", -2, "data: a\n\ndata: b\n\n", "data: a\n\ndata: b\n\n", nil, false},
	}
	readers := map[string]func(string) io.Reader{
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
	}
	for _, tc := range cases {
		for rname, mk := range readers {
			for _, next := range []bool{true, false} {
				name := tc.name + "/" + rname + "/read"
				if next {
					name = tc.name + "/" + rname + "/next"
				}
				t.Run(name, func(t *testing.T) {
					var b Body
					b.reset(bufio.NewReaderSize(mk(tc.wire), 64), tc.length)
					var got []byte
					var err error
					if next {
						got, err = readAllNext(&b)
					} else {
						got, err = io.ReadAll(iotest.OneByteReader(&b))
						if err == nil {
							err = io.EOF
						}
					}
					want := tc.err
					if want == nil {
						want = io.EOF
					}
					if !errors.Is(err, want) {
						t.Fatalf("error %v, want %v", err, want)
					}
					if string(got) != tc.body {
						t.Fatalf("body %q, want %q", got, tc.body)
					}
					if b.Complete() != tc.complete {
						t.Fatalf("Complete() = %v", b.Complete())
					}
					if p, again := b.Next(); len(p) != 0 || !errors.Is(again, want) {
						t.Fatalf("after the end: %q, %v", p, again)
					}
				})
			}
		}
	}
}

// TestBodyNextDoesNotCopy: Next hands out the connection buffer's own
// bytes, and a piece as soon as it arrived.
func TestBodyNextDoesNotCopy(t *testing.T) {
	pr, pw := io.Pipe()
	br := bufio.NewReaderSize(pr, 64)
	var b Body
	b.reset(br, -1)
	go func() {
		_, _ = io.WriteString(pw, "3\r\nabc\r\n")
		_, _ = io.WriteString(pw, "2\r\nde\r\n0\r\n\r\n")
		_ = pw.Close()
	}()
	p, err := b.Next()
	if err != nil || string(p) != "abc" {
		t.Fatalf("first piece %q, %v", p, err)
	}
	inBuffer, _ := br.Peek(3)
	if &p[0] != &inBuffer[0] {
		t.Fatal("Next copied the piece")
	}
	p, err = b.Next()
	if err != nil || string(p) != "de" {
		t.Fatalf("second piece %q, %v", p, err)
	}
	if p, err = b.Next(); len(p) != 0 || err != io.EOF || !b.Complete() {
		t.Fatalf("end: %q, %v, complete %v", p, err, b.Complete())
	}
}

// TestStreamedBodyOverNode: a node streams a chunked answer; the Call's
// Body relays it, and after the terminal chunk the connection goes back
// to the pool and serves the next exchange. A node that closes the
// connection before the terminal chunk leaves a cut body
// (io.ErrUnexpectedEOF) whose connection is not reused.
func TestStreamedBodyOverNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line != "\r\n" {
						continue // request line and headers; the requests have no body
					}
					_, _ = io.WriteString(c, head+"7\r\ndata: a\r\n")
					time.Sleep(10 * time.Millisecond) // a second segment
					_, _ = io.WriteString(c, "7\r\ndata: b\r\n0\r\n\r\n")
				}
			}()
		}
	}()
	n := testNode(t, ln.Addr().String())
	exchange := func() ([]byte, error) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + ln.Addr().String() + "/v1/completions")
		resp.StreamBody = true
		call := &Call{}
		if err := n.Do(call, req, resp, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		n.ObserveFirstByte(time.Now(), resp.StatusCode(), nil)
		got, err := readAllNext(call.Body())
		call.Done(resp, err == io.EOF)
		return got, err
	}
	for i := range 2 {
		got, err := exchange()
		if err != io.EOF || string(got) != "data: adata: b" {
			t.Fatalf("exchange %d: %q, %v", i, got, err)
		}
	}
	if a := accepted.Load(); a != 1 {
		t.Fatalf("%d connections for two complete streams, want 1 (reuse)", a)
	}
	// A node whose answer is cut: it closes the connection after one
	// chunk.
	cutLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cutLn.Close()
	go func() {
		c, err := cutLn.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(c, head+"7\r\ndata: a\r\n")
	}()
	cn := testNode(t, cutLn.Addr().String())
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + cutLn.Addr().String() + "/")
	resp.StreamBody = true
	var call Call
	if err := cn.Do(&call, req, resp, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	cn.ObserveFirstByte(time.Now(), resp.StatusCode(), nil)
	got, err := readAllNext(call.Body())
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "data: a" {
		t.Fatalf("cut stream: %q, %v", got, err)
	}
	call.Done(resp, false)
	cn.pool.mu.Lock()
	idle, open := len(cn.pool.idle), cn.pool.open
	cn.pool.mu.Unlock()
	if idle != 0 || open != 0 {
		t.Fatalf("a cut stream's connection was kept: %d idle, %d open", idle, open)
	}
}

// FuzzBody: any bytes, in any framing, never panic or hang; a chunked body
// that ends cleanly decodes to what net/http's chunked reader decodes.
func FuzzBody(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"A;x=y\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
		"5\r\nhel",
		"5\nhello\r\n0\r\n\r\n",
		"ffffffffffffffff\r\n",
		"0\r\n\r\n",
		"data: a\n\n",
	} {
		f.Add([]byte(s), int8(-1))
		f.Add([]byte(s), int8(-2))
		f.Add([]byte(s), int8(3))
	}
	f.Fuzz(func(t *testing.T, wire []byte, length int8) {
		if len(wire) > 4096 {
			return
		}
		cl := int(length)
		if cl < -2 {
			cl = -2
		}
		var b Body
		b.reset(bufio.NewReaderSize(bytes.NewReader(wire), 16), cl)
		got, err := readAllNext(&b)
		if len(got) > len(wire) {
			t.Fatalf("%d body bytes from %d wire bytes", len(got), len(wire))
		}
		if err != io.EOF || cl != -1 {
			return
		}
		want, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(wire)))
		if rerr != nil {
			t.Fatalf("accepted %q as %q; net/http's reader: %v", wire, got, rerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q decoded to %q; net/http's reader: %q", wire, got, want)
		}
	})
}
