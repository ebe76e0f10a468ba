package h2server_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/internal/h2server"
)

// FuzzServeConn serves a connection that brings the client preface, the
// input and then EOF (a client that half-closes once it has sent
// everything), and discards what the server writes: ServeConn must
// return and Close must end the handlers, whatever the frames were, and
// nothing may panic.
//
// Not net.Pipe: closing it right after the input made the server's
// first write (the SETTINGS ACK) fail and ServeConn return with the rest
// of the input unread.
func FuzzServeConn(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(serveScript)
}

// fuzzCrashers are inputs FuzzServeConn found that crash the process;
// TestFuzzCrashers replays them in a child process so that they do not
// end the other tests (testdata/fuzz would).
var fuzzCrashers = map[string][]byte{
	// A header list over MaxHeaderBytes on stream 1 (no END_STREAM),
	// then trailers on stream 1: nil st.req in addTrailers, on the
	// connection's reader goroutine.
	"0b36aa9d55d9d0af": []byte("\x00\x00\x06\x040\x00\x00\x00\x00000000\x00\x00(\x01\x04\x00\x00\x00\x01\x82\x86A\x89000000001E\x02/0@\x0200\x8600000\x1f@\x850\x835\x05\xb3\x84\xf2\xb2-\xa7\x00\x00\t\x01\x05\x00\x00\x00\x01@\x84\xf2\xb2-\xa7\x82\x1cd"),
	// The same with a DATA frame before the trailers.
	"a61333b3138fbbaa": []byte("\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x00\x01\x00\x00\x00\x00(\x01\x04\x00\x00\x00\x01\x82\x86A\x89/\x91\xd3]\x05]%B\x7fE\x02/t@\x02te\x86M\x835\x05\xb1\x1f@\x85M\x834\xec\xb3\x84\xf2\xb2-\xa7\x00\x00\x04\x00\x00\x00\x00\x00\x01body\x00\x00\t\x01\x05\x00\x00\x00\x01@\x84\xf2\xb2-\xa7\x82\x1cd"),
}

func TestFuzzCrashers(t *testing.T) {
	crashTest(t, func(t *testing.T) {
		for name, input := range fuzzCrashers {
			t.Run(name, func(t *testing.T) { serveScript(t, input) })
		}
	})
}

// serveScript is FuzzServeConn's test.
func serveScript(t *testing.T, input []byte) {
	srv := &h2server.Server{
		MaxConcurrentStreams: 4,
		MaxHeaderBytes:       256, // within a mutation of the seeds
		PrefaceTimeout:       time.Second,
		WriteTimeout:         time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Read", strconv.FormatInt(n, 10))
			w.Header().Set(http.TrailerPrefix+"X-Err", strconv.Quote(errString(err)))
			_, _ = io.WriteString(w, "read the body")
		}),
	}
	conn := newScriptConn(append([]byte(http2.ClientPreface), input...))
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeConn(conn)
	}()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return after the input ended")
	}
	closed := make(chan struct{})
	go func() {
		_ = srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Server.Close did not return: a handler is stuck")
	}
}

// scriptConn is a net.Conn whose reads return a fixed input and then
// EOF, and whose writes are discarded.
type scriptConn struct {
	mu     sync.Mutex
	in     *bytes.Reader
	closed bool
}

func newScriptConn(in []byte) *scriptConn { return &scriptConn{in: bytes.NewReader(in)} }

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (*scriptConn) LocalAddr() net.Addr              { return scriptAddr{} }
func (*scriptConn) RemoteAddr() net.Addr             { return scriptAddr{} }
func (*scriptConn) SetDeadline(time.Time) error      { return nil }
func (*scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (*scriptConn) SetWriteDeadline(time.Time) error { return nil }

type scriptAddr struct{}

func (scriptAddr) Network() string { return "script" }
func (scriptAddr) String() string  { return "script:1" }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fuzzSeeds are valid frame sequences (after the preface), one for each
// part of the protocol the server handles.
func fuzzSeeds() [][]byte {
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
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 16})
		write(fr, block)
		seeds = append(seeds, buf.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "http", ":authority", "example.test", ":path", "/"}
	post := []string{":method", "POST", ":scheme", "http", ":authority", "example.test", ":path", "/upload", "content-length", "10"}
	headers := func(fr *http2.Framer, id uint32, end bool, block []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: end, EndHeaders: true})
	}

	build(func(fr *http2.Framer, block func(...string) []byte) { // a GET
		headers(fr, 1, true, block(get...))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a POST in two DATA frames, one padded
		headers(fr, 1, false, block(post...))
		_ = fr.WriteData(1, false, []byte("01234"))
		_ = fr.WriteDataPadded(1, true, []byte("56789"), []byte{0, 0, 0})
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a body, then trailers
		headers(fr, 1, false, block(append(get[:6:6], ":path", "/t", "te", "trailers", "trailer", "x-sum")...))
		_ = fr.WriteData(1, false, []byte("body"))
		headers(fr, 1, true, block("x-sum", "abc"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // streams, windows, pings, priorities
		headers(fr, 1, false, block(get...))
		headers(fr, 3, true, block(get...))
		_ = fr.WriteWindowUpdate(0, 1<<20)
		_ = fr.WriteWindowUpdate(1, 1000)
		_ = fr.WritePing(false, [8]byte{1, 2, 3})
		_ = fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 10})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15})
		_ = fr.WriteData(1, true, nil)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a reset, a GOAWAY
		headers(fr, 1, false, block(post...))
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
		headers(fr, 3, true, block(get...))
		_ = fr.WriteGoAway(3, http2.ErrCodeNo, []byte("bye"))
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a header block in CONTINUATION frames
		b := block(append(get, "x-long", strings.Repeat("v", 60))...)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:10], EndStream: true})
		_ = fr.WriteContinuation(1, false, b[10:20])
		_ = fr.WriteContinuation(1, true, b[20:])
	})
	build(func(fr *http2.Framer, block func(...string) []byte) { // a header list over the limit, then a request with trailers
		headers(fr, 1, false, block(append(get, "x-pad", strings.Repeat("p", 100))...))
		headers(fr, 3, false, block(append(get[:6:6], ":path", "/t")...))
		headers(fr, 3, true, block("x-trailer", "v"))
	})
	return seeds
}
