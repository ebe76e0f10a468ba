package h2client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/internal/h2client"
)

// fuzzBound bounds each step of a fuzz run: RoundTrip, reading the body,
// Close.
const fuzzBound = 5 * time.Second

// FuzzNodeFrames: the node's side of the connection is a valid SETTINGS
// frame, then the fuzzed bytes (once the client has sent its request's
// HEADERS), then EOF. RoundTrip must return, and the body (if any) must
// end, within fuzzBound, and nothing may panic.
func FuzzNodeFrames(f *testing.F) {
	for _, seed := range nodeSeeds() {
		f.Add(seed)
	}
	f.Fuzz(replayNode)
}

// replayNode is FuzzNodeFrames's test.
func replayNode(t *testing.T, input []byte) {
	var dials int
	var mu sync.Mutex
	tr := &h2client.Transport{
		Dial: func(context.Context) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if dials++; dials > 1 {
				return nil, errors.New("fuzz: one connection only")
			}
			return newNodeScript(input), nil
		},
		MaxHeaderListSize: 512, // within a mutation of the seeds
		StreamWindow:      1 << 16,
		ConnWindow:        1 << 16,
	}
	defer func() {
		closed := make(chan struct{})
		go func() {
			_ = tr.Close()
			close(closed)
		}()
		if !within(closed) {
			t.Fatal("Close did not return")
		}
	}()
	req, err := http.NewRequest("POST", "http://node.test/svc/Method", strings.NewReader("request body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Te", "trailers")
	resc := goRoundTrip(tr, req)
	var res result
	if !within(resc, &res) {
		t.Fatal("RoundTrip did not return")
	}
	if res.err != nil {
		return
	}
	defer res.resp.Body.Close()
	readc := goReadAll(res.resp.Body)
	if !within(readc, nil) {
		t.Fatal("reading the answer's body did not end")
	}
}

// within waits up to fuzzBound for ch; v, if not nil, receives what came.
func within[T any](ch <-chan T, v ...*T) bool {
	timer := time.NewTimer(fuzzBound)
	defer timer.Stop()
	select {
	case got := <-ch:
		if len(v) > 0 && v[0] != nil {
			*v[0] = got
		}
		return true
	case <-timer.C:
		return false
	}
}

// nodeScript is a net.Conn for the client: its reads give a SETTINGS
// frame at once, then, once the client has written a HEADERS frame, the
// script, then EOF. Writes are scanned for frames and discarded.
type nodeScript struct {
	mu       sync.Mutex
	settings *bytes.Reader
	script   *bytes.Reader
	frames   frameScanner
	headers  chan struct{} // closed when the client wrote a HEADERS frame
	closed   chan struct{}
	sawHdrs  bool
	isClosed bool
}

func newNodeScript(script []byte) *nodeScript {
	var b bytes.Buffer
	_ = http2.NewFramer(&b, nil).WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	return &nodeScript{
		settings: bytes.NewReader(b.Bytes()),
		script:   bytes.NewReader(script),
		frames:   frameScanner{skip: len(http2.ClientPreface)},
		headers:  make(chan struct{}),
		closed:   make(chan struct{}),
	}
}

func (c *nodeScript) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.settings.Len() > 0 {
		defer c.mu.Unlock()
		return c.settings.Read(p)
	}
	c.mu.Unlock()
	select {
	case <-c.headers:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return 0, net.ErrClosed
	}
	return c.script.Read(p)
}

func (c *nodeScript) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return 0, net.ErrClosed
	}
	c.frames.scan(p, func(typ http2.FrameType, _ http2.Flags, _ uint32) {
		if typ == http2.FrameHeaders && !c.sawHdrs {
			c.sawHdrs = true
			close(c.headers)
		}
	})
	return len(p), nil
}

func (c *nodeScript) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isClosed {
		c.isClosed = true
		close(c.closed)
	}
	return nil
}

func (*nodeScript) LocalAddr() net.Addr              { return scriptAddr{} }
func (*nodeScript) RemoteAddr() net.Addr             { return scriptAddr{} }
func (*nodeScript) SetDeadline(time.Time) error      { return nil }
func (*nodeScript) SetReadDeadline(time.Time) error  { return nil }
func (*nodeScript) SetWriteDeadline(time.Time) error { return nil }

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "script:1" }

// nodeSeeds are valid frame sequences a node sends after its SETTINGS
// (stream 1 is the client's request), one for each part of the protocol
// the client handles.
func nodeSeeds() [][]byte {
	var seeds [][]byte
	build := func(write func(fr *http2.Framer, block func(fields ...string) []byte)) {
		var buf, hbuf bytes.Buffer
		fr := http2.NewFramer(&buf, nil)
		enc := hpack.NewEncoder(&hbuf)
		block := func(fields ...string) []byte {
			hbuf.Reset()
			for i := 0; i+1 < len(fields); i += 2 {
				_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
			}
			return bytes.Clone(hbuf.Bytes())
		}
		_ = fr.WriteSettingsAck()
		write(fr, block)
		seeds = append(seeds, buf.Bytes())
	}
	headers := func(fr *http2.Framer, end bool, block []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: end, EndHeaders: true})
	}
	build(func(fr *http2.Framer, block func(...string) []byte) { // an answer with a length
		headers(fr, false, block(":status", "200", "content-type", "text/plain", "content-length", "5"))
		_ = fr.WriteData(1, true, []byte("hello"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a gRPC answer: message, then trailers
		headers(fr, false, block(":status", "200", "content-type", "application/grpc"))
		_ = fr.WriteData(1, false, []byte{0, 0, 0, 0, 2, 'o', 'k'})
		headers(fr, true, block("grpc-status", "0", "x-trailer", "t"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // trailers-only
		headers(fr, true, block(":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "not found"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a header block in CONTINUATION frames, padded DATA
		b := block(":status", "200", "x-long", strings.Repeat("v", 60))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10]})
		_ = fr.WriteContinuation(1, false, b[10:20])
		_ = fr.WriteContinuation(1, true, b[20:])
		_ = fr.WriteDataPadded(1, true, []byte("padded"), []byte{0, 0, 0})
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // windows, pings, settings between the frames of an answer
		_ = fr.WriteWindowUpdate(0, 1<<20)
		_ = fr.WriteWindowUpdate(1, 1000)
		headers(fr, false, block(":status", "200"))
		_ = fr.WritePing(false, [8]byte{1, 2, 3})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15})
		_ = fr.WriteData(1, false, []byte("part one "))
		_ = fr.WritePing(true, [8]byte{})
		_ = fr.WriteData(1, true, []byte("part two"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a 1xx answer, then the answer
		headers(fr, false, block(":status", "103", "link", "</a>"))
		headers(fr, false, block(":status", "204"))
		_ = fr.WriteData(1, true, nil)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a reset after the headers
		headers(fr, false, block(":status", "200"))
		_ = fr.WriteData(1, false, []byte("partial"))
		_ = fr.WriteRSTStream(1, http2.ErrCodeInternal)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // refused
		_ = fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a GOAWAY that keeps the stream, then the answer
		_ = fr.WriteGoAway(1, http2.ErrCodeNo, []byte("draining"))
		headers(fr, true, block(":status", "200"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a GOAWAY that drops the stream
		_ = fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, nil)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // an unknown frame type, then the answer
		_ = fr.WriteRawFrame(0xfa, 0, 1, []byte("ignore me"))
		headers(fr, true, block(":status", "200"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // dynamic-table use across header blocks
		headers(fr, false, block(":status", "200", "x-custom", "value", "x-custom", "value"))
		_ = fr.WriteData(1, false, []byte("body"))
		headers(fr, true, block("x-custom", "value", "x-trailer", "t"))
	})
	return seeds
}
