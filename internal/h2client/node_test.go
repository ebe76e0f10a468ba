package h2client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/internal/h2client"
	"github.com/switchyard-dev/switchyard/internal/testnode"
)

// nodeConn is the node's side of one connection, written frame by
// frame. Its methods return errors rather than failing the test: they
// run on the node's goroutines, and a connection the client closed is
// often the expected end.
type nodeConn struct {
	nc   net.Conn
	bw   *bufio.Writer
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
	// clientSettings holds the client's settings, as next has read them.
	clientSettings map[http2.SettingID]uint32
}

// serveNode starts a hand-written node on loopback. For each connection
// it reads the client preface, writes a SETTINGS frame with settings and
// hands the connection to handle with its index (0 for the first). The
// test's cleanup closes the connections and waits for the handlers.
func serveNode(t testing.TB, settings []http2.Setting, handle func(n *nodeConn, i int)) string {
	t.Helper()
	var accepted atomic.Int32
	return testnode.Serve(t, "tcp", func(c net.Conn) {
		i := int(accepted.Add(1)) - 1
		_ = c.SetDeadline(time.Now().Add(2 * testTimeout))
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		n := newNodeConn(c)
		if n.fr.WriteSettings(settings...) != nil || n.flush() != nil {
			return
		}
		handle(n, i)
	})
}

// newNodeConn is the node's side of c, past the client preface.
func newNodeConn(c net.Conn) *nodeConn {
	n := &nodeConn{nc: c, bw: bufio.NewWriter(c), clientSettings: map[http2.SettingID]uint32{}}
	n.fr = http2.NewFramer(n.bw, c)
	n.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	n.fr.MaxHeaderListSize = 1 << 20
	n.fr.AllowIllegalWrites = true // the garbage tests write what the framer would refuse
	n.henc = hpack.NewEncoder(&n.hbuf)
	return n
}

func (n *nodeConn) flush() error { return n.bw.Flush() }

// next returns the next frame other than SETTINGS, PING (both answered
// at once), WINDOW_UPDATE and PRIORITY.
func (n *nodeConn) next() (http2.Frame, error) {
	for {
		f, err := n.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = f.ForeachSetting(func(st http2.Setting) error {
					n.clientSettings[st.ID] = st.Val
					return nil
				})
				if err := n.fr.WriteSettingsAck(); err != nil {
					return nil, err
				}
				if err := n.flush(); err != nil {
					return nil, err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := n.fr.WritePing(true, f.Data); err != nil {
					return nil, err
				}
				if err := n.flush(); err != nil {
					return nil, err
				}
			}
		case *http2.WindowUpdateFrame, *http2.PriorityFrame:
		default:
			return f, nil
		}
	}
}

// nodeRequest is a request as the node read it.
type nodeRequest struct {
	id     uint32
	fields []hpack.HeaderField
	body   []byte
}

func (r nodeRequest) pseudo(name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// readRequest reads frames up to the end of a request (its END_STREAM),
// one stream at a time; RST_STREAM and GOAWAY frames are skipped.
func (n *nodeConn) readRequest() (nodeRequest, error) {
	var r nodeRequest
	for {
		f, err := n.next()
		if err != nil {
			return r, err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if r.id == 0 {
				r.id, r.fields = f.StreamID, f.Fields
			}
			if f.StreamEnded() {
				return r, nil
			}
		case *http2.DataFrame:
			r.body = append(r.body, f.Data()...)
			if f.StreamEnded() {
				return r, nil
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
		default:
			return r, fmt.Errorf("node: unexpected %v", f.Header())
		}
	}
}

// block HPACK-encodes name, value pairs.
func (n *nodeConn) block(fields ...string) []byte {
	n.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = n.henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(n.hbuf.Bytes())
}

// headers writes a header block of fields, in a HEADERS frame and as
// many CONTINUATION frames as the default frame size needs.
func (n *nodeConn) headers(id uint32, end bool, fields ...string) error {
	b := n.block(fields...)
	const max = 16384
	first := b[:min(len(b), max)]
	b = b[len(first):]
	if err := n.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(b) == 0}); err != nil {
		return err
	}
	for len(b) > 0 {
		part := b[:min(len(b), max)]
		b = b[len(part):]
		if err := n.fr.WriteContinuation(id, len(b) == 0, part); err != nil {
			return err
		}
	}
	return nil
}

// answer writes a 200 answer to stream id with body and flushes.
func (n *nodeConn) answer(id uint32, body string) error {
	if err := n.headers(id, false, ":status", "200", "content-length", strconv.Itoa(len(body))); err != nil {
		return err
	}
	if err := n.fr.WriteData(id, true, []byte(body)); err != nil {
		return err
	}
	return n.flush()
}

// answerAll answers every request of the connection with its :path.
func answerAll(n *nodeConn) {
	for {
		r, err := n.readRequest()
		if err != nil {
			return
		}
		if n.answer(r.id, r.pseudo(":path")) != nil {
			return
		}
	}
}

// TestRequestHeaderFields checks the request's header block as sent:
// pseudo-header fields first, lower-case names, no connection-specific
// fields, TE only as "trailers", :scheme from the URL, :authority from
// req.Host.
func TestRequestHeaderFields(t *testing.T) {
	got := make(chan nodeRequest, 4)
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		for {
			r, err := n.readRequest()
			if err != nil {
				return
			}
			signal(got, r)
			if n.answer(r.id, "ok") != nil {
				return
			}
		}
	})
	tr, _ := newTransport(t, addr, nil)

	req := newRequest(t, testContext(t), "POST", "https://url-host.example/ignored", strings.NewReader("12345"))
	req.URL.Opaque = "/svc/Method?q=%2F"
	req.Host = "authority.example"
	req.Header["te"] = []string{"trailers"}
	req.Header["x-lower"] = []string{"a"}
	req.Header["X-Mixed-Case"] = []string{"b", "c"}
	req.Header["content-type"] = []string{"application/grpc"}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host"} {
		req.Header.Set(k, "hop")
	}
	roundTrip(t, tr, req)
	r := recv(t, got, "the node to read the request")

	var names []string
	regular := map[string][]string{}
	pastPseudo := false
	for _, f := range r.fields {
		names = append(names, f.Name)
		if f.Name != strings.ToLower(f.Name) {
			t.Errorf("field name %q is not lower-case", f.Name)
		}
		if strings.HasPrefix(f.Name, ":") {
			if pastPseudo {
				t.Errorf("pseudo-header field %s after a regular field (fields %q)", f.Name, names)
			}
			continue
		}
		pastPseudo = true
		regular[f.Name] = append(regular[f.Name], f.Value)
	}
	for name, want := range map[string]string{":method": "POST", ":scheme": "https", ":authority": "authority.example", ":path": "/svc/Method?q=%2F"} {
		if got := r.pseudo(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, k := range []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"} {
		if v, ok := regular[k]; ok {
			t.Errorf("connection-specific field %s: %q was sent", k, v)
		}
	}
	for name, want := range map[string]string{"te": "trailers", "x-lower": "a", "x-mixed-case": "b,c", "content-type": "application/grpc", "content-length": "5"} {
		// Two fields or one with the values joined: either is right.
		if got := strings.ReplaceAll(strings.Join(regular[name], ","), ", ", ","); got != want {
			t.Errorf("field %s = %q, want %q (fields %q)", name, got, want, names)
		}
	}
	if string(r.body) != "12345" {
		t.Errorf("body %q", r.body)
	}

	// TE with anything but trailers is not sent as it stands.
	req = newRequest(t, testContext(t), "GET", "http://"+addr+"/te", nil)
	req.Header.Set("TE", "gzip, deflate")
	roundTrip(t, tr, req)
	r = recv(t, got, "the node to read the request")
	for _, f := range r.fields {
		if f.Name == "te" && f.Value != "trailers" {
			t.Errorf("te: %q sent, want only \"trailers\" or nothing", f.Value)
		}
		if f.Name == "content-length" {
			t.Errorf("content-length %q sent for a request without body", f.Value)
		}
	}
}

// TestRefusedStream: REFUSED_STREAM from the node is ErrRefused.
func TestRefusedStream(t *testing.T) {
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		for {
			r, err := n.readRequest()
			if err != nil {
				return
			}
			if r.pseudo(":path") == "/refuse" {
				err = n.fr.WriteRSTStream(r.id, http2.ErrCodeRefusedStream)
			} else {
				err = n.fr.WriteRSTStream(r.id, http2.ErrCodeInternal)
			}
			if err != nil || n.flush() != nil {
				return
			}
		}
	})
	tr, d := newTransport(t, addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/refuse", nil)), "RoundTrip")
	if !errors.Is(res.err, h2client.ErrRefused) {
		t.Errorf("RoundTrip of a refused stream: %v, want ErrRefused", res.err)
	}
	var se http2.StreamError
	if res.err != nil && !errors.As(res.err, &se) {
		t.Logf("refused: %v (%T) is not an http2.StreamError", res.err, res.err)
	}
	// Another reset code is an error, not ErrRefused.
	res = recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/internal", nil)), "RoundTrip")
	if res.err == nil {
		res.resp.Body.Close()
		t.Fatalf("RoundTrip of a stream reset INTERNAL_ERROR answered %d", res.resp.StatusCode)
	}
	if errors.Is(res.err, h2client.ErrRefused) {
		t.Errorf("RST_STREAM INTERNAL_ERROR gave ErrRefused (%v): the node may have processed it", res.err)
	}
	if errors.As(res.err, &se) {
		if se.Code != http2.ErrCodeInternal {
			t.Errorf("StreamError code %v, want INTERNAL_ERROR", se.Code)
		}
	} else {
		t.Logf("reset: %v (%T) is not an http2.StreamError", res.err, res.err)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1 (a reset stream leaves the connection usable)", n)
	}
}

// TestGoAwayBeforeAnyStream: a node that sends GOAWAY(last stream 0)
// right after its SETTINGS: the request is refused (ErrRefused), and the
// next RoundTrip dials a new connection. Each RoundTrip has 3 s: one
// that dials connection after connection, or waits on a stream the
// GOAWAY already excluded, shows as a context error.
func TestGoAwayBeforeAnyStream(t *testing.T) {
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		if n.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("going away")) != nil || n.flush() != nil {
			return
		}
		for {
			if _, err := n.next(); err != nil {
				return
			}
		}
	})
	tr, d := newTransport(t, addr, nil)
	ctx, cancel := context.WithTimeout(testContext(t), 3*time.Second)
	defer cancel()
	res := recv(t, goRoundTrip(tr, newRequest(t, ctx, "GET", "http://"+addr+"/", nil)), "RoundTrip")
	if res.err == nil {
		res.resp.Body.Close()
	}
	if !errors.Is(res.err, h2client.ErrRefused) {
		t.Errorf("RoundTrip on a connection that sent GOAWAY(0): %v after %d dials, want ErrRefused", res.err, d.count())
	}
	if n := d.count(); n > 2 {
		t.Errorf("%d connections dialled for one request", n)
	}
	dialled := d.count()
	ctx, cancel = context.WithTimeout(testContext(t), 3*time.Second)
	defer cancel()
	res = recv(t, goRoundTrip(tr, newRequest(t, ctx, "GET", "http://"+addr+"/", nil)), "the second RoundTrip")
	if res.err == nil {
		res.resp.Body.Close()
	}
	if n := d.count(); n <= dialled {
		t.Errorf("%d connections dialled after the second RoundTrip (%d before it), want a new one", n, dialled)
	}
	if !errors.Is(res.err, h2client.ErrRefused) {
		t.Errorf("second RoundTrip: %v after %d dials in all, want ErrRefused", res.err, d.count())
	}
}

// TestGoAwayWithStreamInFlight: the node reads stream 1, then sends
// GOAWAY(last stream 0) and never answers it: ErrRefused; the next
// RoundTrip goes on a new connection, which answers.
func TestGoAwayWithStreamInFlight(t *testing.T) {
	addr := serveNode(t, nil, func(n *nodeConn, i int) {
		if i > 0 {
			answerAll(n)
			return
		}
		if _, err := n.readRequest(); err != nil {
			return
		}
		if n.fr.WriteGoAway(0, http2.ErrCodeNo, nil) != nil || n.flush() != nil {
			return
		}
		for {
			if _, err := n.next(); err != nil {
				return
			}
		}
	})
	tr, d := newTransport(t, addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/first", nil)), "RoundTrip")
	if !errors.Is(res.err, h2client.ErrRefused) {
		if res.err == nil {
			res.resp.Body.Close()
		}
		t.Errorf("RoundTrip of a stream above the GOAWAY's last stream ID: %v, want ErrRefused", res.err)
	}
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/second", nil))
	if string(body) != "/second" {
		t.Errorf("answer %q", body)
	}
	if n := d.count(); n != 2 {
		t.Errorf("%d connections dialled, want 2", n)
	}
}

// TestAnswerHeadersOverLimit: answer headers, or trailers, over
// MaxHeaderListSize fail the request, without a hang; the Transport
// still works afterwards.
func TestAnswerHeadersOverLimit(t *testing.T) {
	var big []string
	for i := range 16 {
		big = append(big, fmt.Sprintf("x-big-%02d", i), strings.Repeat(string(rune('a'+i)), 1000))
	}
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		for {
			r, err := n.readRequest()
			if err != nil {
				return
			}
			switch r.pseudo(":path") {
			case "/big-headers":
				err = n.headers(r.id, true, append([]string{":status", "200"}, big...)...)
			case "/big-trailers":
				err = n.headers(r.id, false, ":status", "200")
				if err == nil {
					err = n.fr.WriteData(r.id, false, []byte("body"))
				}
				if err == nil {
					err = n.headers(r.id, true, big...)
				}
			default:
				err = n.answer(r.id, "small")
			}
			if err != nil || n.flush() != nil {
				return
			}
		}
	})
	tr, _ := newTransport(t, addr, func(tr *h2client.Transport) { tr.MaxHeaderListSize = 4 << 10 })

	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/big-headers", nil)), "RoundTrip")
	if res.err == nil {
		res.resp.Body.Close()
		t.Errorf("16 KiB of answer headers over a 4 KiB limit: answered %d, want an error", res.resp.StatusCode)
	} else {
		t.Logf("headers over the limit: %v", res.err)
	}
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/small", nil))
	if string(body) != "small" {
		t.Errorf("answer after the oversized one %q", body)
	}

	res = recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/big-trailers", nil)), "RoundTrip")
	if res.err == nil {
		rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
		res.resp.Body.Close()
		if rr.err == nil {
			t.Errorf("16 KiB of trailers over a 4 KiB limit: body %q read to EOF, trailer %d fields; want an error", rr.body, len(res.resp.Trailer))
		} else {
			t.Logf("trailers over the limit: %v", rr.err)
		}
	}
	_, body = roundTrip(t, tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/small", nil))
	if string(body) != "small" {
		t.Errorf("answer after the oversized trailers %q", body)
	}
}

// TestSilentNode: a node that completes the SETTINGS exchange and then
// neither answers nor acknowledges PINGs loses the connection after
// ReadIdleTimeout and PingTimeout: the pending RoundTrip fails.
func TestSilentNode(t *testing.T) {
	pings := make(chan struct{}, 1)
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		for {
			f, err := n.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && (n.fr.WriteSettingsAck() != nil || n.flush() != nil) {
					return
				}
			case *http2.PingFrame:
				signal(pings, struct{}{})
			}
		}
	})
	tr, _ := newTransport(t, addr, func(tr *h2client.Transport) {
		tr.ReadIdleTimeout, tr.PingTimeout = 100*time.Millisecond, 100*time.Millisecond
	})
	start := time.Now()
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/", nil)), "the RoundTrip to a silent node to fail")
	if res.err == nil {
		res.resp.Body.Close()
		t.Fatalf("a silent node answered %d", res.resp.StatusCode)
	}
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), res.err)
	recv(t, pings, "the node to read the client's PING (sent before it gave up)")
}

// TestFlowControlHonoured: a node advertising INITIAL_WINDOW_SIZE 1000
// and leaving its connection window at the default 65535, topped up only
// when nearly spent: the client's DATA never exceeds either window nor
// the frame size, and both bodies (one of known length, one streamed)
// arrive whole.
func TestFlowControlHonoured(t *testing.T) {
	const streamWindow, size = 1000, 100_000
	// The node reports each breach as it sees it, and each body's hash.
	violations := make(chan string, 20)
	bodies := make(chan string, 2)
	addr := serveNode(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: streamWindow}}, func(n *nodeConn, _ int) {
		connWin, initial := int64(65535), int64(65535)
		acked := false
		win := map[uint32]int64{}
		got := map[uint32][]byte{}
		open := map[uint32]bool{}
		violate := func(format string, args ...any) { signal(violations, fmt.Sprintf(format, args...)) }
		for {
			f, err := n.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if f.IsAck() && !acked {
					// The client applied our window: every stream's
					// window changes by the difference.
					acked = true
					for id := range win {
						win[id] += streamWindow - initial
					}
					initial = streamWindow
				} else if !f.IsAck() && n.fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.MetaHeadersFrame:
				if _, ok := win[f.StreamID]; !ok {
					win[f.StreamID], open[f.StreamID] = initial, true
				}
				if f.StreamEnded() {
					violate("stream %d: request without body", f.StreamID)
				}
			case *http2.DataFrame:
				id, l := f.StreamID, int64(f.Length)
				if l > 16384 {
					violate("stream %d: DATA of %d bytes, over the frame size 16384", id, l)
				}
				if l > win[id] {
					violate("stream %d: DATA of %d bytes with a stream window of %d", id, l, win[id])
				}
				if l > connWin {
					violate("stream %d: DATA of %d bytes with a connection window of %d", id, l, connWin)
				}
				win[id] -= l
				connWin -= l
				got[id] = append(got[id], f.Data()...)
				if f.StreamEnded() {
					open[id] = false
					signal(bodies, sha256Hex(got[id]))
					if n.answer(id, strconv.Itoa(len(got[id]))) != nil {
						return
					}
				}
			case *http2.PingFrame:
				if !f.IsAck() && n.fr.WritePing(true, f.Data) != nil {
					return
				}
			}
			// Top the windows up only once they are nearly spent, so that
			// the client has to wait for them.
			for id, w := range win {
				if open[id] && w < streamWindow/2 {
					if n.fr.WriteWindowUpdate(id, uint32(2*streamWindow-w)) != nil {
						return
					}
					win[id] = 2 * streamWindow
				}
			}
			if connWin < 100 {
				if n.fr.WriteWindowUpdate(0, uint32(3000-connWin)) != nil {
					return
				}
				connWin = 3000
			}
			if n.flush() != nil {
				return
			}
		}
	})
	tr, _ := newTransport(t, addr, nil)
	payload := randomBytes(size, 7)
	known := newRequest(t, testContext(t), "POST", "http://"+addr+"/known", bytes.NewReader(payload))
	streamed := newRequest(t, testContext(t), "POST", "http://"+addr+"/streamed", nil)
	streamed.Body, streamed.ContentLength = io.NopCloser(bytes.NewReader(payload)), -1
	done := make(chan string, 2)
	for _, req := range []*http.Request{known, streamed} {
		go func() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				done <- req.URL.Path + ": " + err.Error()
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- fmt.Sprintf("%s: %s %v", req.URL.Path, b, err)
		}()
	}
	reportBreaches := func() {
		for {
			select {
			case v := <-violations:
				t.Error(v)
			default:
				return
			}
		}
	}
	defer reportBreaches()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for range 2 {
		select {
		case got := <-done:
			if !strings.HasSuffix(got, ": "+strconv.Itoa(size)+" <nil>") {
				t.Errorf("%s; want the node to have read %d bytes", got, size)
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for the requests to a node with small windows", testTimeout)
		}
	}
	for range 2 {
		if sum := recv(t, bodies, "the node's hash of a body"); sum != sha256Hex(payload) {
			t.Errorf("a body of hash %s arrived, want %s", sum, sha256Hex(payload))
		}
	}
}

// thenAnswer answers stream id after a frame the client must treat as a
// connection error (written with the error err): a client that let it
// pass gets an answer rather than a hang.
func thenAnswer(n *nodeConn, id uint32, err error) error {
	if err != nil {
		return err
	}
	return n.answer(id, "answer")
}

// TestNodeGarbage: a node that breaks the protocol makes the request
// fail (connection errors) or, where RFC 9113 says to ignore what it
// sent, lets it succeed; nothing may panic or hang. A node that breaks
// a rule and then answers shows a client that let the breach pass.
func TestNodeGarbage(t *testing.T) {
	type outcome int
	const (
		mustFail outcome = iota
		mustSucceed
		either // the RFC does not settle it
	)
	cases := []struct {
		name  string
		want  outcome
		reply func(n *nodeConn, id uint32) error
	}{
		// The seed's first nine bytes read as a frame header of length
		// 15,830,039: over the 16,384 the client allows, under the 16 MiB
		// a framer accepts unless told; the 4 KiB that follow never
		// complete it, so a client that waits for the payload hangs.
		{"random bytes", mustFail, func(n *nodeConn, id uint32) error {
			_, err := n.bw.Write(randomBytes(4096, 9))
			return err
		}},
		{"DATA on stream 0", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 6.1: connection error PROTOCOL_ERROR
			if err := n.headers(id, false, ":status", "200"); err != nil {
				return err
			}
			return n.fr.WriteData(0, false, []byte("stream zero"))
		}},
		{"HEADERS on an even stream", either, func(n *nodeConn, id uint32) error { // the node opened a stream: no push was allowed
			if err := n.headers(2, true, ":status", "200"); err != nil {
				return err
			}
			return n.answer(id, "answer")
		}},
		{"DATA over the client's frame size", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 4.2: FRAME_SIZE_ERROR
			size := 16384 // SETTINGS_MAX_FRAME_SIZE's initial value
			if v, ok := n.clientSettings[http2.SettingMaxFrameSize]; ok {
				size = int(v)
			}
			if err := n.headers(id, false, ":status", "200"); err != nil {
				return err
			}
			return n.fr.WriteData(id, true, make([]byte, size+1))
		}},
		{"unknown frame type", mustSucceed, func(n *nodeConn, id uint32) error { // RFC 9113 4.1: ignored
			if err := n.fr.WriteRawFrame(0xfa, 0xff, 0, []byte("unknown on 0")); err != nil {
				return err
			}
			if err := n.fr.WriteRawFrame(0xfb, 0, id, []byte("unknown on the stream")); err != nil {
				return err
			}
			if err := n.headers(id, false, ":status", "200"); err != nil {
				return err
			}
			if err := n.fr.WriteRawFrame(0xfc, 0, id, nil); err != nil {
				return err
			}
			return n.fr.WriteData(id, true, []byte("answer"))
		}},
		{"DATA before HEADERS", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 8.1: malformed, stream error
			return n.fr.WriteData(id, true, []byte("no headers"))
		}},
		{"no :status", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 8.3.2: malformed
			return n.headers(id, true, "x-no-status", "1")
		}},
		{"upper-case field name", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 8.2.1: malformed
			return n.headers(id, true, ":status", "200", "X-Upper", "1")
		}},
		{"WINDOW_UPDATE of 0 on the connection", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 6.9: PROTOCOL_ERROR
			return thenAnswer(n, id, n.fr.WriteWindowUpdate(0, 0))
		}},
		{"connection window over 2^31-1", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 6.9.1: FLOW_CONTROL_ERROR
			if err := n.fr.WriteWindowUpdate(0, 1<<31-1); err != nil {
				return err
			}
			return thenAnswer(n, id, n.fr.WriteWindowUpdate(0, 1<<31-1))
		}},
		{"CONTINUATION without HEADERS", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 6.10: PROTOCOL_ERROR
			return thenAnswer(n, id, n.fr.WriteContinuation(id, true, n.block(":status", "200")))
		}},
		{"PUSH_PROMISE", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 8.4: push disabled, PROTOCOL_ERROR
			return thenAnswer(n, id, n.fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2,
				BlockFragment: n.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/"), EndHeaders: true}))
		}},
		{"content-length mismatch", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 8.1.1: malformed
			if err := n.headers(id, false, ":status", "200", "content-length", "10"); err != nil {
				return err
			}
			return n.fr.WriteData(id, true, []byte("short"))
		}},
		{"SETTINGS with a bad window", mustFail, func(n *nodeConn, id uint32) error { // RFC 9113 6.5.2: FLOW_CONTROL_ERROR
			return thenAnswer(n, id, n.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}))
		}},
		{"1xx before the answer", mustSucceed, func(n *nodeConn, id uint32) error { // RFC 9113 8.1: interim answers precede the final one
			if err := n.headers(id, false, ":status", "103", "link", "</style.css>; rel=preload"); err != nil {
				return err
			}
			return n.answer(id, "answer")
		}},
		{"unknown setting", mustSucceed, func(n *nodeConn, id uint32) error { // RFC 9113 6.5.2: ignored
			if err := n.fr.WriteSettings(http2.Setting{ID: 0x7777, Val: 1}); err != nil {
				return err
			}
			return n.answer(id, "answer")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := serveNode(t, nil, func(n *nodeConn, _ int) {
				r, err := n.readRequest()
				if err != nil || c.reply(n, r.id) != nil || n.flush() != nil {
					return
				}
				for { // read until the client closes the connection
					if _, err := n.next(); err != nil {
						return
					}
				}
			})
			tr, _ := newTransport(t, addr, nil)
			res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/", nil)), "RoundTrip")
			var err error
			var body []byte
			if err = res.err; err == nil {
				rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
				res.resp.Body.Close()
				body, err = rr.body, rr.err
			}
			switch {
			case c.want == mustFail && err == nil:
				t.Errorf("request succeeded with a body of %d bytes (%.40q), want an error", len(body), body)
			case c.want == mustSucceed && err != nil:
				t.Errorf("request failed: %v; want the frame ignored", err)
			case err == nil && string(body) != "answer":
				t.Errorf("answer %.40q, want %q", body, "answer")
			default:
				t.Logf("outcome: body %.40q, error %v", body, err)
			}
		})
	}
}

// TestClientSettingsAndPing: the client's first frame is SETTINGS
// (RFC 9113 3.4), disabling push and granting StreamWindow per stream;
// it raises the connection's window to ConnWindow; it acknowledges the
// node's SETTINGS and answers its PING.
func TestClientSettingsAndPing(t *testing.T) {
	type seen struct {
		request    bool // the request's HEADERS came (and were answered)
		settings   map[http2.SettingID]uint32
		connWindow int64
		settingAck bool
		pingAck    bool
	}
	seenc := make(chan seen, 1)
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		s := seen{settings: map[http2.SettingID]uint32{}, connWindow: 65535}
		defer func() { signal(seenc, s) }()
		if n.fr.WritePing(false, [8]byte{'n', 'o', 'd', 'e'}) != nil || n.flush() != nil {
			return
		}
		for !s.settingAck || !s.pingAck || !s.request {
			f, err := n.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if f.IsAck() {
					s.settingAck = true
					break
				}
				_ = f.ForeachSetting(func(st http2.Setting) error {
					s.settings[st.ID] = st.Val
					return nil
				})
				if n.fr.WriteSettingsAck() != nil || n.flush() != nil {
					return
				}
			case *http2.PingFrame:
				if f.IsAck() && f.Data == [8]byte{'n', 'o', 'd', 'e'} {
					s.pingAck = true
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					s.connWindow += int64(f.Increment)
				}
			case *http2.MetaHeadersFrame:
				s.request = true
				if n.answer(f.StreamID, "ok") != nil {
					return
				}
			}
		}
	})
	tr, _ := newTransport(t, addr, func(tr *h2client.Transport) {
		tr.StreamWindow, tr.ConnWindow, tr.MaxHeaderListSize = 1<<20, 8<<20, 8<<10
	})
	roundTrip(t, tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/", nil))
	s := recv(t, seenc, "the node's report")
	if !s.settingAck {
		t.Errorf("the client did not acknowledge the node's SETTINGS")
	}
	if !s.pingAck {
		t.Errorf("the client did not answer the node's PING")
	}
	if v, ok := s.settings[http2.SettingEnablePush]; !ok || v != 0 {
		t.Errorf("SETTINGS_ENABLE_PUSH = %d (sent %v), want 0: the client accepts no push", v, ok)
	}
	if v := s.settings[http2.SettingInitialWindowSize]; v != 1<<20 {
		t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE = %d, want StreamWindow %d", v, 1<<20)
	}
	if s.connWindow != 8<<20 {
		t.Errorf("connection window raised to %d, want ConnWindow %d", s.connWindow, 8<<20)
	}
	if v, ok := s.settings[http2.SettingMaxHeaderListSize]; !ok || v != 8<<10 {
		t.Logf("SETTINGS_MAX_HEADER_LIST_SIZE = %d (sent %v); MaxHeaderListSize is %d (advisory, not required)", v, ok, 8<<10)
	}
}

// TestClientPrefaceFirst: the connection starts with the client preface
// and then a SETTINGS frame, sent without waiting for the node's.
func TestClientPrefaceFirst(t *testing.T) {
	first := make(chan string, 1)
	addr := testnode.Serve(t, "tcp", func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			signal(first, fmt.Sprintf("preface %q, %v", preface, err))
			return
		}
		// The framer reads exactly one frame off c, with no read-ahead.
		f, err := http2.NewFramer(io.Discard, c).ReadFrame()
		if err != nil {
			signal(first, "read: "+err.Error())
			return
		}
		signal(first, f.Header().Type.String())
		if settings, ok := f.(*http2.SettingsFrame); !ok || settings.IsAck() {
			return
		}
		n := newNodeConn(c)
		if n.fr.WriteSettings() != nil || n.fr.WriteSettingsAck() != nil || n.flush() != nil {
			return
		}
		answerAll(n)
	})
	tr, _ := newTransport(t, addr, nil)
	resc := goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/first", nil))
	if got := recv(t, first, "the client's first frame"); got != "SETTINGS" {
		t.Errorf("first frame after the preface: %s, want SETTINGS", got)
	}
	res := recv(t, resc, "RoundTrip")
	if res.err != nil {
		t.Fatal(res.err)
	}
	res.resp.Body.Close()
}

// TestAnswerOverClientWindow: a node that sends more of an answer than
// the client's stream window allows (the body is not read, so the
// client granted nothing more) breaks flow control: the body must fail,
// not buffer the excess.
func TestAnswerOverClientWindow(t *testing.T) {
	const window = 16 << 10
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		r, err := n.readRequest()
		if err != nil {
			return
		}
		if n.headers(r.id, false, ":status", "200") != nil {
			return
		}
		chunk := make([]byte, 16<<10)
		for i := range 20 { // 320 KiB into a 16 KiB window
			if n.fr.WriteData(r.id, i == 19, chunk) != nil {
				return
			}
		}
		if n.flush() != nil {
			return
		}
		for {
			if _, err := n.next(); err != nil {
				return
			}
		}
	})
	tr, _ := newTransport(t, addr, func(tr *h2client.Transport) { tr.StreamWindow = window })
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", "http://"+addr+"/", nil)), "RoundTrip")
	if res.err != nil {
		t.Logf("RoundTrip failed: %v", res.err)
		return
	}
	defer res.resp.Body.Close()
	rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
	if rr.err == nil {
		t.Errorf("read %d bytes of an answer sent over a %d-byte window without error; want FLOW_CONTROL_ERROR", len(rr.body), window)
	} else {
		t.Logf("after %d bytes: %v", len(rr.body), rr.err)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestWriteTimeout: a node that grants a huge window but reads nothing:
// once the socket buffers are full, a write blocked for WriteTimeout
// closes the connection and fails the request, whether RoundTrip writes
// the body (known length) or a goroutine does (streamed).
func TestWriteTimeout(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("streamed=%v", streamed), func(t *testing.T) {
			addr := serveNode(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}}, func(n *nodeConn, _ int) {
				if n.fr.WriteWindowUpdate(0, 1<<31-1-65535) != nil || n.flush() != nil {
					return
				}
				<-t.Context().Done() // read nothing more, to the end of the test
			})
			tr, _ := newTransport(t, addr, func(tr *h2client.Transport) { tr.WriteTimeout = 200 * time.Millisecond })
			req := newRequest(t, testContext(t), "POST", "http://"+addr+"/", io.LimitReader(zeros{}, 1<<30))
			req.ContentLength = 1 << 30
			if streamed {
				req.ContentLength = -1
			}
			start := time.Now()
			res := recv(t, goRoundTrip(tr, req), "RoundTrip to fail on the write timeout")
			if res.err == nil {
				res.resp.Body.Close()
				t.Fatalf("answer %d from a node that reads nothing", res.resp.StatusCode)
			}
			t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), res.err)
		})
	}
}

// TestNodeAllowsNoStreams: a node whose SETTINGS allow no stream
// (MAX_CONCURRENT_STREAMS 0, legal: RFC 9113 6.5.2) must not make the
// client dial connection after connection: the request fails, or waits
// for its context, with a bounded number of dials.
func TestNodeAllowsNoStreams(t *testing.T) {
	addr := serveNode(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 0}}, func(n *nodeConn, _ int) {
		for {
			if _, err := n.next(); err != nil {
				return
			}
		}
	})
	tr, d := newTransport(t, addr, nil)
	ctx, cancel := context.WithTimeout(testContext(t), 2*time.Second)
	defer cancel()
	res := recv(t, goRoundTrip(tr, newRequest(t, ctx, "GET", "http://"+addr+"/", nil)), "RoundTrip")
	if res.err == nil {
		res.resp.Body.Close()
		t.Fatalf("answer %d from a node that allows no stream", res.resp.StatusCode)
	}
	if n := d.count(); n > 2 {
		t.Errorf("%d connections dialled for one request in 2 s (error %v); want at most 2", n, res.err)
	}
	t.Logf("%d dials, error %v", d.count(), res.err)
}

// TestBodyLengthMismatch: a request body shorter or longer than its
// ContentLength fails the request, and the node never gets a request
// whose body (ended by END_STREAM) differs from the content-length sent.
func TestBodyLengthMismatch(t *testing.T) {
	type seen struct {
		path, contentLength string
		got                 int
		ended               bool // END_STREAM (else RST_STREAM)
	}
	seenc := make(chan seen, 8)
	addr := serveNode(t, nil, func(n *nodeConn, _ int) {
		streams := map[uint32]*seen{}
		for {
			f, err := n.next()
			if err != nil {
				return
			}
			id := f.Header().StreamID
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				s := &seen{}
				for _, hf := range f.Fields {
					switch hf.Name {
					case "content-length":
						s.contentLength = hf.Value
					case ":path":
						s.path = hf.Value
					}
				}
				streams[id] = s
				if f.StreamEnded() {
					s.ended = true
				}
			case *http2.DataFrame:
				if s := streams[id]; s != nil {
					s.got += len(f.Data())
					s.ended = f.StreamEnded()
				}
				if l := f.Length; l > 0 { // give the window back at once
					if n.fr.WriteWindowUpdate(0, l) != nil || (!f.StreamEnded() && n.fr.WriteWindowUpdate(id, l) != nil) || n.flush() != nil {
						return
					}
				}
			case *http2.RSTStreamFrame:
				if s := streams[id]; s != nil {
					signal(seenc, *s)
					delete(streams, id)
				}
				continue
			}
			if s := streams[id]; s != nil && s.ended {
				signal(seenc, *s)
				delete(streams, id)
				if n.answer(id, "ok") != nil {
					return
				}
			}
		}
	})
	tr, _ := newTransport(t, addr, nil)
	for _, c := range []struct{ declared, actual int }{{10, 5}, {10, 20}, {100_000, 50_000}, {100_000, 150_000}} {
		t.Run(fmt.Sprintf("%d_as_%d", c.actual, c.declared), func(t *testing.T) {
			req := newRequest(t, testContext(t), "POST", "http://"+addr+"/"+t.Name(), bytes.NewReader(make([]byte, c.actual)))
			req.ContentLength = int64(c.declared)
			res := recv(t, goRoundTrip(tr, req), "RoundTrip")
			if res.err == nil {
				rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
				res.resp.Body.Close()
				t.Errorf("a body of %d bytes sent as ContentLength %d: answered %d %q, want an error", c.actual, c.declared, res.resp.StatusCode, rr.body)
			} else {
				t.Logf("error: %v", res.err)
			}
			// What the node has seen so far (a request it answered is
			// there; a reset may come later, or nothing at all).
			for {
				select {
				case s := <-seenc:
					if s.ended && s.contentLength != strconv.Itoa(s.got) {
						t.Errorf("the node got a whole request (%s) of %d body bytes with content-length %q", s.path, s.got, s.contentLength)
					}
					continue
				default:
				}
				break
			}
		})
	}
}

// TestCloseWhileDialling: Close while a RoundTrip is still setting up its
// connection makes that RoundTrip return promptly (well before the wait
// for the node's SETTINGS or the request's context would end it).
func TestCloseWhileDialling(t *testing.T) {
	const promptly = 3 * time.Second
	check := func(t *testing.T, tr *h2client.Transport, started <-chan struct{}, url string) {
		ctx, cancel := context.WithCancel(context.Background()) // no deadline: Close alone must end it
		defer cancel()
		resc := goRoundTrip(tr, newRequest(t, ctx, "GET", url, nil))
		recv(t, started, "the dial to start")
		_ = tr.Close()
		timer := time.NewTimer(promptly)
		defer timer.Stop()
		select {
		case res := <-resc:
			if res.err == nil {
				res.resp.Body.Close()
				t.Fatalf("answer %d after Close", res.resp.StatusCode)
			}
			if !errors.Is(res.err, h2client.ErrClosed) {
				t.Logf("RoundTrip error after Close: %v (not ErrClosed)", res.err)
			}
		case <-timer.C:
			t.Errorf("RoundTrip still pending %v after Close", promptly)
		}
	}
	t.Run("node sends no SETTINGS", func(t *testing.T) {
		started := make(chan struct{}, 1)
		addr := testnode.Serve(t, "tcp", func(c net.Conn) {
			signal(started, struct{}{})
			_, _ = io.Copy(io.Discard, c) // never a SETTINGS
		})
		tr, _ := newTransport(t, addr, nil)
		check(t, tr, started, "http://"+addr+"/")
	})
	t.Run("Dial blocks", func(t *testing.T) {
		started := make(chan struct{}, 1)
		tr := &h2client.Transport{Dial: func(ctx context.Context) (net.Conn, error) {
			signal(started, struct{}{})
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.Context().Done():
				return nil, errors.New("test over")
			}
		}}
		check(t, tr, started, "http://node.test/")
	})
}
