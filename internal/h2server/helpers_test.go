package h2server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/internal/h2server"
)

// testTimeout bounds every wait of these tests: network reads, requests,
// channel receives.
const testTimeout = 10 * time.Second

// server is an h2server.Server serving a loopback listener.
type server struct {
	*h2server.Server
	addr  string
	conns atomic.Int32 // connections accepted
}

// serve starts srv on a loopback listener; the test's cleanup closes the
// listener and the server, and waits for both.
func serve(t testing.TB, srv *h2server.Server) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Server: srv, addr: ln.Addr().String()}
	var conns sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			conns.Add(1)
			go func() {
				defer conns.Done()
				srv.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepting
		closed := make(chan struct{})
		go func() {
			_ = srv.Close()
			conns.Wait()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(testTimeout):
			t.Error("Server.Close did not return: a handler or a connection is stuck")
		}
	})
	return s
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// h2cTransport is an HTTP/2 client speaking h2c with prior knowledge
// (net/http's, which is x/net's HTTP/2 client bundled).
func h2cTransport(t testing.TB) *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// testContext is cancelled after testTimeout or when the test ends.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newRequest builds a request under testContext; it fails the test on
// error.
func newRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// roundTrip sends req and returns the answer with its body read whole.
func roundTrip(t testing.TB, tr http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

// recv returns the next value from ch, failing the test after
// testTimeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// rawConn is a frame-level HTTP/2 client: it writes what a real client
// library would not, and reads the server's frames as they come.
// Writes are buffered until flush, so frames written together reach the
// server in one write.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	bw   *bufio.Writer
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
}

// dialRaw connects to addr and sends the client preface and a SETTINGS
// frame with settings; every read and write fails after testTimeout.
func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	rc := &rawConn{t: t, nc: nc, bw: bufio.NewWriter(nc)}
	rc.fr = http2.NewFramer(rc.bw, nc)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.henc = hpack.NewEncoder(&rc.hbuf)
	_, _ = rc.bw.WriteString(http2.ClientPreface)
	rc.check(rc.fr.WriteSettings(settings...))
	rc.flush()
	return rc
}

func (rc *rawConn) check(err error) {
	rc.t.Helper()
	if err != nil {
		rc.t.Fatalf("raw client write: %v", err)
	}
}

func (rc *rawConn) flush() {
	rc.t.Helper()
	rc.check(rc.bw.Flush())
}

// headerBlock HPACK-encodes name, value pairs.
func (rc *rawConn) headerBlock(fields ...string) []byte {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = rc.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// headers writes a HEADERS frame with fields (name, value pairs).
func (rc *rawConn) headers(id uint32, end bool, fields ...string) {
	rc.t.Helper()
	rc.check(rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: rc.headerBlock(fields...), EndStream: end, EndHeaders: true,
	}))
}

// request writes a request's HEADERS: method, path and the extra fields.
func (rc *rawConn) request(id uint32, method, path string, end bool, extra ...string) {
	rc.t.Helper()
	fields := append([]string{":method", method, ":scheme", "http", ":authority", "example.test", ":path", path}, extra...)
	rc.headers(id, end, fields...)
}

func (rc *rawConn) data(id uint32, end bool, p []byte) {
	rc.t.Helper()
	rc.check(rc.fr.WriteData(id, end, p))
}

// readFrame returns the next frame, failing the test on a read error.
func (rc *rawConn) readFrame() http2.Frame {
	rc.t.Helper()
	f, err := rc.fr.ReadFrame()
	if err != nil {
		rc.t.Fatalf("raw client read: %v", err)
	}
	return f
}

// next returns the next frame other than SETTINGS (acknowledged) and
// WINDOW_UPDATE.
func (rc *rawConn) next() http2.Frame {
	rc.t.Helper()
	for {
		f := rc.readFrame()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				rc.check(rc.fr.WriteSettingsAck())
				rc.flush()
			}
			continue
		case *http2.WindowUpdateFrame:
			continue
		}
		return f
	}
}

// readEnd reads until the server closes the connection and returns the
// frames (other than SETTINGS and WINDOW_UPDATE) read before the end and
// the read error that ended it.
func (rc *rawConn) readEnd() ([]http2.Frame, error) {
	var frames []http2.Frame
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return frames, err
		}
		switch f.(type) {
		case *http2.SettingsFrame, *http2.WindowUpdateFrame:
		default:
			frames = append(frames, f)
		}
	}
}

// expectReset reads the next frame, which must be RST_STREAM(id, code).
func (rc *rawConn) expectReset(id uint32, code http2.ErrCode) {
	rc.t.Helper()
	f := rc.next()
	rst, ok := f.(*http2.RSTStreamFrame)
	if !ok || rst.StreamID != id || rst.ErrCode != code {
		rc.t.Fatalf("got %s, want RST_STREAM stream=%d %v", describe(f), id, code)
	}
}

// expectGoAway reads the next frame, which must be GOAWAY with code.
func (rc *rawConn) expectGoAway(code http2.ErrCode) *http2.GoAwayFrame {
	rc.t.Helper()
	f := rc.next()
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok || ga.ErrCode != code {
		rc.t.Fatalf("got %s, want GOAWAY %v", describe(f), code)
	}
	return ga
}

// ping writes a PING and reads up to its ACK; the frames read before it
// (other than SETTINGS and WINDOW_UPDATE) are returned, ending with the
// GOAWAY if the server sent one instead.
func (rc *rawConn) ping() []http2.Frame {
	rc.t.Helper()
	data := [8]byte{'s', 'y', 'n', 'c', 0, 0, 0, 1}
	rc.check(rc.fr.WritePing(false, data))
	rc.flush()
	var before []http2.Frame
	for {
		f := rc.next()
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == data {
			return before
		}
		before = append(before, f)
		if _, ok := f.(*http2.GoAwayFrame); ok {
			return before
		}
	}
}

// rawAnswer is an answer as read frame by frame.
type rawAnswer struct {
	status   string
	header   http.Header
	body     []byte
	trailer  http.Header
	reset    bool // ended by RST_STREAM
	code     http2.ErrCode
	dataLens []int
}

// answer reads the frames of stream id up to its END_STREAM or
// RST_STREAM; a frame of another stream or a GOAWAY fails the test.
func (rc *rawConn) answer(id uint32) rawAnswer {
	rc.t.Helper()
	var a rawAnswer
	for {
		f := rc.next()
		if f.Header().StreamID != id {
			rc.t.Fatalf("reading the answer of stream %d, got %s", id, describe(f))
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if a.status == "" {
				a.status = f.PseudoValue("status")
				a.header = fieldsHeader(f.RegularFields())
			} else {
				a.trailer = fieldsHeader(f.RegularFields())
			}
			if f.StreamEnded() {
				return a
			}
		case *http2.DataFrame:
			a.body = append(a.body, f.Data()...)
			a.dataLens = append(a.dataLens, len(f.Data()))
			if f.StreamEnded() {
				return a
			}
		case *http2.RSTStreamFrame:
			a.reset, a.code = true, f.ErrCode
			return a
		default:
			rc.t.Fatalf("reading the answer of stream %d, got %s", id, describe(f))
		}
	}
}

func fieldsHeader(fields []hpack.HeaderField) http.Header {
	h := make(http.Header, len(fields))
	for _, f := range fields {
		h.Add(f.Name, f.Value)
	}
	return h
}

// describe names a frame for failure messages.
func describe(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.RSTStreamFrame:
		return f.FrameHeader.String() + " code=" + f.ErrCode.String()
	case *http2.GoAwayFrame:
		return f.FrameHeader.String() + " code=" + f.ErrCode.String() + " debug=" + string(f.DebugData())
	case *http2.MetaHeadersFrame:
		return f.FrameHeader.String() + " :status=" + f.PseudoValue("status")
	case nil:
		return "no frame"
	}
	return f.Header().String()
}

// isClosedErr reports whether err is how a read sees the peer close the
// connection.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET)
}
