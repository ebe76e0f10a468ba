package h2client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/h2client"
	"github.com/switchyard-dev/switchyard/internal/testcert"
)

// TestUnaryRequestAndAnswer checks what net/http's HTTP/2 server sees of
// a POST (method, :path from URL.Opaque, authority, headers, length,
// body) and what the client makes of the answer.
func TestUnaryRequestAndAnswer(t *testing.T) {
	type seen struct {
		method, requestURI, host, proto string
		header                          http.Header
		contentLength                   int64
		body                            string
	}
	seenc := make(chan seen, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			body = []byte("read error: " + err.Error())
		}
		signal(seenc, seen{r.Method, r.RequestURI, r.Host, r.Proto, r.Header.Clone(), r.ContentLength, string(body)})
		w.Header().Set("Content-Type", "text/plain")
		w.Header()["x-lower-answer"] = []string{"low"} // sent lower-case anyway
		w.Header()["X-Multi"] = []string{"a", "b"}
		w.Header().Set("Content-Length", "13")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "hello, client")
	}), nil)
	tr, d := newTransport(t, s.addr, nil)

	req := newRequest(t, testContext(t), http.MethodPost, s.url("/ignored"), strings.NewReader("ping"))
	req.URL.Opaque = "/a%2Fb?x=1" // sent as it stands
	req.Host = "virtual.example:8443"
	req.Header["x-lower"] = []string{"l"}
	req.Header.Set("X-Custom", "c")
	req.Header["X-Multi"] = []string{"one", "two"}
	req.Header.Set("User-Agent", "h2client-test")
	// Connection-specific headers: an HTTP/2 server treats any of them
	// as a malformed request, so the request only succeeds if none went.
	req.Header.Set("Connection", "keep-alive")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Transfer-Encoding", "chunked")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("Host", "wrong.example")
	resp, body := roundTrip(t, tr, req)
	got := recv(t, seenc, "the handler")

	for _, c := range []struct{ what, got, want string }{
		{"method", got.method, "POST"},
		{"RequestURI", got.requestURI, "/a%2Fb?x=1"},
		{"Host", got.host, "virtual.example:8443"},
		{"Proto", got.proto, "HTTP/2.0"},
		{"body", got.body, "ping"},
		{"X-Lower", got.header.Get("X-Lower"), "l"},
		{"X-Custom", got.header.Get("X-Custom"), "c"},
		{"User-Agent", got.header.Get("User-Agent"), "h2client-test"},
		{"Content-Length", got.header.Get("Content-Length"), "4"},
	} {
		if c.got != c.want {
			t.Errorf("request %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !slices.Equal(got.header["X-Multi"], []string{"one", "two"}) {
		t.Errorf("request X-Multi = %q, want [one two]", got.header["X-Multi"])
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host"} {
		if v, ok := got.header[k]; ok {
			t.Errorf("request header %s = %q arrived, want it not sent", k, v)
		}
	}
	if got.contentLength != 4 {
		t.Errorf("request ContentLength = %d, want 4", got.contentLength)
	}

	if resp.StatusCode != http.StatusCreated || resp.Proto != "HTTP/2.0" || resp.ProtoMajor != 2 || resp.ProtoMinor != 0 {
		t.Errorf("answer %d %s (%d.%d), want 201 HTTP/2.0 (2.0)", resp.StatusCode, resp.Proto, resp.ProtoMajor, resp.ProtoMinor)
	}
	if string(body) != "hello, client" {
		t.Errorf("answer body %q, want %q", body, "hello, client")
	}
	if resp.ContentLength != 13 {
		t.Errorf("answer ContentLength = %d, want 13", resp.ContentLength)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("answer Content-Type %q, want text/plain", got)
	}
	if got, ok := resp.Header["X-Lower-Answer"]; !ok || !slices.Equal(got, []string{"low"}) {
		t.Errorf("answer header X-Lower-Answer = %q (present %v), want [low] under the canonical key; header %v", got, ok, resp.Header)
	}
	if !slices.Equal(resp.Header["X-Multi"], []string{"a", "b"}) {
		t.Errorf("answer X-Multi = %q, want [a b]", resp.Header["X-Multi"])
	}
	for k := range resp.Header {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("answer header key %q is not canonical", k)
		}
	}

	// Without Opaque, :path is the URL's request URI, escaped as parsed.
	req = newRequest(t, testContext(t), http.MethodGet, s.url("/p/a%20b%2Fc?y=2&z"), nil)
	resp, _ = roundTrip(t, tr, req)
	got = recv(t, seenc, "the handler")
	if got.requestURI != "/p/a%20b%2Fc?y=2&z" || got.method != "GET" || got.host != s.addr {
		t.Errorf("GET arrived as %s %s (host %q), want GET /p/a%%20b%%2Fc?y=2&z (host %q)", got.method, got.requestURI, got.host, s.addr)
	}
	if got.contentLength != 0 || got.header.Get("Content-Length") != "" {
		t.Errorf("GET without body arrived with ContentLength %d, Content-Length %q; want 0 and none", got.contentLength, got.header.Get("Content-Length"))
	}
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("GET answer %d", resp.StatusCode)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled for two sequential requests, want 1", n)
	}
}

// TestAnswerWithoutLength: an answer whose length is not announced has
// ContentLength -1; an answer with no body at all reads as empty.
func TestAnswerWithoutLength(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/streamed":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "streamed")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	resp, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/streamed"), nil))
	if resp.ContentLength != -1 || string(body) != "streamed" {
		t.Errorf("streamed answer: ContentLength %d body %q, want -1 and %q", resp.ContentLength, body, "streamed")
	}
	resp, body = roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/empty"), nil))
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 || resp.Body == nil {
		t.Errorf("empty answer: %d body %q", resp.StatusCode, body)
	}
}

// trailerBody is a request body that fills its request's trailers when
// it reaches its end, as the contract asks of a caller.
type trailerBody struct {
	r       io.Reader
	trailer http.Header
	read    []byte
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read = append(b.read, p[:n]...)
	if err == io.EOF {
		b.trailer.Set("X-Sum", sha256Hex(b.read))
		b.trailer.Set("X-Later", "filled at EOF")
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// TestTrailersBothWays: request trailers (known length and streamed)
// reach net/http's r.Trailer; the answer's declared and undeclared
// trailers are in resp.Trailer when the body reads io.EOF.
func TestTrailersBothWays(t *testing.T) {
	type seen struct {
		sum, later, body string
		err              error
	}
	seenc := make(chan seen, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		signal(seenc, seen{r.Trailer.Get("X-Sum"), r.Trailer.Get("X-Later"), sha256Hex(body), err})
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "answer body")
		w.Header().Set("X-Declared", "declared value")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "undeclared value")
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)

	payload := randomBytes(100_000, 3)
	for _, length := range []int64{int64(len(payload)), -1} {
		t.Run(fmt.Sprintf("ContentLength=%d", length), func(t *testing.T) {
			req := newRequest(t, testContext(t), "POST", s.url("/trailers"), nil)
			req.Trailer = http.Header{"X-Sum": nil, "X-Later": nil}
			req.Body = &trailerBody{r: bytes.NewReader(payload), trailer: req.Trailer}
			req.ContentLength = length
			res := recv(t, goRoundTrip(tr, req), "RoundTrip")
			if res.err != nil {
				t.Fatal(res.err)
			}
			defer res.resp.Body.Close()
			rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
			if rr.err != nil || string(rr.body) != "answer body" {
				t.Fatalf("answer body %q, %v", rr.body, rr.err)
			}
			if got := res.resp.Trailer.Get("X-Declared"); got != "declared value" {
				t.Errorf("answer trailer X-Declared = %q, want %q (Trailer %v)", got, "declared value", res.resp.Trailer)
			}
			if got := res.resp.Trailer.Get("X-Undeclared"); got != "undeclared value" {
				t.Errorf("answer trailer X-Undeclared = %q, want %q (Trailer %v)", got, "undeclared value", res.resp.Trailer)
			}
			for k := range res.resp.Trailer {
				if k != http.CanonicalHeaderKey(k) {
					t.Errorf("answer trailer key %q is not canonical", k)
				}
			}
			got := recv(t, seenc, "the handler")
			if got.err != nil || got.body != sha256Hex(payload) {
				t.Errorf("handler read a body of hash %s (err %v), want %s", got.body, got.err, sha256Hex(payload))
			}
			if got.sum != sha256Hex(payload) || got.later != "filled at EOF" {
				t.Errorf("request trailers X-Sum %q X-Later %q, want %q and %q", got.sum, got.later, sha256Hex(payload), "filled at EOF")
			}
		})
	}
}

// TestBidirectionalStreaming: a streamed request body (io.Pipe,
// ContentLength -1) and a streamed answer in lockstep: every chunk is
// echoed before the next is written, so RoundTrip must have returned
// while the body was still open.
func TestBidirectionalStreaming(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)

	ctx := testContext(t)
	pr, pw := io.Pipe()
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) }) // no hang past the test's bound
	defer stop()
	req := newRequest(t, ctx, "POST", s.url("/echo"), pr)
	req.ContentLength = -1
	res := recv(t, goRoundTrip(tr, req), "RoundTrip (before any body was written)")
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	buf := make([]byte, 64)
	for i := range 100 {
		chunk := fmt.Sprintf("chunk %03d of the streamed body\n", i)
		if _, err := io.WriteString(pw, chunk); err != nil {
			t.Fatalf("writing chunk %d: %v", i, err)
		}
		if _, err := io.ReadFull(res.resp.Body, buf[:len(chunk)]); err != nil {
			t.Fatalf("reading the echo of chunk %d: %v", i, err)
		}
		if string(buf[:len(chunk)]) != chunk {
			t.Fatalf("echo of chunk %d = %q, want %q", i, buf[:len(chunk)], chunk)
		}
	}
	_ = pw.Close()
	rr := recv(t, goReadAll(res.resp.Body), "the end of the answer")
	if rr.err != nil || len(rr.body) != 0 {
		t.Errorf("after the last echo: %q, %v; want the end", rr.body, rr.err)
	}
}

// TestLargeBodiesSmallWindows moves 8 MiB each way with 64 KiB windows on
// both sides (the client's StreamWindow and ConnWindow, the server's
// receive buffers), byte-exact.
func TestLargeBodiesSmallWindows(t *testing.T) {
	const size = 8 << 20
	up, down := randomBytes(size, 1), randomBytes(size, 2)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		w.Header().Set("X-Got", strconv.FormatInt(n, 10)+" "+hex.EncodeToString(h.Sum(nil)))
		if err != nil {
			w.Header().Set("X-Err", err.Error())
		}
		_, _ = w.Write(down)
	}), &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10})
	tr, _ := newTransport(t, s.addr, func(tr *h2client.Transport) {
		tr.StreamWindow, tr.ConnWindow = 64<<10, 64<<10
	})
	for _, length := range []int64{size, -1} {
		t.Run(fmt.Sprintf("ContentLength=%d", length), func(t *testing.T) {
			req := newRequest(t, testContext(t), "POST", s.url("/large"), nil)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(up)), length
			resp, body := roundTrip(t, tr, req)
			if want := strconv.Itoa(size) + " " + sha256Hex(up); resp.Header.Get("X-Got") != want {
				t.Errorf("server got %q (err %q), want %q", resp.Header.Get("X-Got"), resp.Header.Get("X-Err"), want)
			}
			if len(body) != size || sha256Hex(body) != sha256Hex(down) {
				t.Errorf("answer body: %d bytes of hash %s, want %d of %s", len(body), sha256Hex(body), size, sha256Hex(down))
			}
		})
	}
}

// TestMaxConcurrentStreams: 300 concurrent requests to a server that
// allows 10 streams per connection all succeed, on more than one
// connection and no more than ceil(300/10). The handlers hold every
// request until 20 are in flight at once, which needs a second
// connection.
func TestMaxConcurrentStreams(t *testing.T) {
	const total, limit, hold = 300, 10, 20
	var inFlight atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight.Add(1) >= hold {
			once.Do(func() { close(release) })
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		inFlight.Add(-1)
		_, _ = io.WriteString(w, r.URL.Path)
	}), &http.HTTP2Config{MaxConcurrentStreams: limit})
	tr, d := newTransport(t, s.addr, nil)

	ctx := testContext(t)
	errc := make(chan error, total)
	for i := range total {
		go func() {
			path := "/r" + strconv.Itoa(i)
			resp, err := tr.RoundTrip(newRequestNoT(ctx, path, s))
			if err != nil {
				errc <- fmt.Errorf("%s: %w", path, err)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errc <- fmt.Errorf("%s: reading: %w", path, err)
			case string(body) != path:
				errc <- fmt.Errorf("%s: answer %q", path, body)
			default:
				errc <- nil
			}
		}()
	}
	var failed int
	for i := range total {
		if err := recv(t, errc, fmt.Sprintf("request %d of %d (held until %d are in flight: a transport that queues instead of dialling never gets there)", i+1, total, hold)); err != nil {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, total)
	}
	if n := d.count(); n < 2 || n > (total+limit-1)/limit {
		t.Errorf("%d connections dialled, want 2 to %d", n, (total+limit-1)/limit)
	}
}

// newRequestNoT is newRequest for goroutines other than the test's: a GET
// of s's path under ctx.
func newRequestNoT(ctx context.Context, path string, s *h2cServer) *http.Request {
	req, err := http.NewRequestWithContext(ctx, "GET", s.url(path), nil)
	if err != nil {
		panic(err)
	}
	return req
}

// TestCancelBeforeAnswer: cancelling the request (its context, or
// RoundTripAbort's channel) while the handler has not answered makes
// RoundTrip return a context.Canceled error, and the reset reaches the
// handler: with a small body, and with a known-length body RoundTrip is
// still writing into a window the node does not open (its handler reads
// nothing).
func TestCancelBeforeAnswer(t *testing.T) {
	bodies := []struct {
		name string
		body func() io.Reader
	}{
		{"small body", func() io.Reader { return strings.NewReader("body") }},
		{"body blocked by flow control", func() io.Reader { return bytes.NewReader(make([]byte, 4<<20)) }},
	}
	for _, b := range bodies {
		for _, way := range cancelWays {
			t.Run(b.name+"/"+way.name, func(t *testing.T) {
				entered, handlerDone := make(chan struct{}, 1), make(chan struct{}, 1)
				s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					signal(entered, struct{}{})
					<-r.Context().Done()
					signal(handlerDone, struct{}{})
				}), nil)
				tr, _ := newTransport(t, s.addr, nil)
				rt, ctx, cancel := way.start(t, tr)
				resc := goRoundTrip(rt, newRequest(t, ctx, "POST", s.url("/block"), b.body()))
				recv(t, entered, "the handler to start")
				cancel()
				res := recv(t, resc, "RoundTrip to return after the cancel")
				if res.err == nil {
					res.resp.Body.Close()
					t.Fatalf("RoundTrip answered %d after the request was cancelled, want an error", res.resp.StatusCode)
				}
				if !errors.Is(res.err, context.Canceled) {
					t.Errorf("RoundTrip error %v (%T), want errors.Is context.Canceled", res.err, res.err)
				}
				recv(t, handlerDone, "the handler's context to end (RST_STREAM reaching the node)")
			})
		}
	}
}

// TestCancelDuringBody: cancelling the request while the answer's body
// is being read fails the next Body.Read, and the reset reaches the
// handler.
func TestCancelDuringBody(t *testing.T) {
	for _, way := range cancelWays {
		t.Run(way.name, func(t *testing.T) {
			handlerDone := make(chan struct{}, 1)
			s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "first")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				signal(handlerDone, struct{}{})
			}), nil)
			tr, _ := newTransport(t, s.addr, nil)
			rt, ctx, cancel := way.start(t, tr)
			res := recv(t, goRoundTrip(rt, newRequest(t, ctx, "GET", s.url("/slow"), nil)), "RoundTrip")
			if res.err != nil {
				t.Fatal(res.err)
			}
			defer res.resp.Body.Close()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(res.resp.Body, buf); err != nil || string(buf) != "first" {
				t.Fatalf("first read %q, %v", buf, err)
			}
			cancel()
			rr := recv(t, goReadAll(res.resp.Body), "Body.Read to fail after the cancel")
			if rr.err == nil {
				t.Fatalf("Body read to EOF (%q more) after the cancel, want an error", rr.body)
			}
			if !errors.Is(rr.err, context.Canceled) {
				t.Errorf("Body.Read error after the cancel: %v (%T), want errors.Is context.Canceled", rr.err, rr.err)
			}
			recv(t, handlerDone, "the handler's context to end (RST_STREAM reaching the node)")
		})
	}
}

// TestBodyCloseBeforeEOF: closing a long streamed answer's body resets
// the stream (the handler's context ends) and leaves the connection
// usable: the next request goes on it.
func TestBodyCloseBeforeEOF(t *testing.T) {
	handlerDone := make(chan struct{}, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "small")
			return
		}
		chunk := bytes.Repeat([]byte("x"), 1024)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		signal(handlerDone, struct{}{})
	}), nil)
	tr, d := newTransport(t, s.addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/endless"), nil)), "RoundTrip")
	if res.err != nil {
		t.Fatal(res.err)
	}
	if _, err := io.ReadFull(res.resp.Body, make([]byte, 10_000)); err != nil {
		t.Fatalf("reading the start of the answer: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- res.resp.Body.Close() }()
	if err := recv(t, closed, "Body.Close"); err != nil {
		t.Errorf("Body.Close: %v", err)
	}
	recv(t, handlerDone, "the handler's context to end (RST_STREAM reaching the node)")
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/small"), nil))
	if string(body) != "small" {
		t.Errorf("next answer %q", body)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1 (the reset stream leaves the connection usable)", n)
	}
}

// TestNodeResetMidAnswer: a handler that aborts after a flushed write
// (net/http resets the stream): Body.Read returns what came and then an
// error other than EOF.
func TestNodeResetMidAnswer(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/abort"), nil)), "RoundTrip")
	if res.err != nil {
		t.Logf("RoundTrip failed (the reset overtook the headers): %v", res.err)
		return
	}
	defer res.resp.Body.Close()
	rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
	if rr.err == nil {
		t.Fatalf("body read to EOF (%q) after the node reset the stream, want an error", rr.body)
	}
	if string(rr.body) != "partial" {
		t.Errorf("body before the error %q, want %q", rr.body, "partial")
	}
	t.Logf("Body.Read error after the reset: %v (%T)", rr.err, rr.err)
}

// TestServerCloseInFlight: srv.Close with a stream in flight fails that
// stream; the next RoundTrip dials again (a new server on another port)
// and succeeds.
func TestServerCloseInFlight(t *testing.T) {
	entered := make(chan struct{}, 1)
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(entered, struct{}{})
		<-r.Context().Done()
	})
	s := startH2C(t, block, nil)
	tr, d := newTransport(t, s.addr, nil)
	resc := goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/block"), nil))
	recv(t, entered, "the handler to start")
	_ = s.Close()
	res := recv(t, resc, "RoundTrip to fail after the server closed")
	if res.err == nil {
		rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
		res.resp.Body.Close()
		if rr.err == nil {
			t.Fatalf("answer %d %q with no error from a server closed before answering", res.resp.StatusCode, rr.body)
		}
	}

	checkNextRequestRedials(t, tr, d)
}

// TestServerShutdownInFlight: srv.Shutdown (GOAWAY, then close when
// idle) with a stream in flight: that stream completes; a request after
// it goes on a new connection.
func TestServerShutdownInFlight(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(entered, struct{}{})
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "completed")
	}), nil)
	tr, d := newTransport(t, s.addr, nil)
	resc := goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/held"), nil))
	recv(t, entered, "the handler to start")
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(testContext(t)) }()
	// The GOAWAY is on the wire before the answer, so the client has
	// read it by the time it has the answer.
	recv(t, s.goaways, "the server's GOAWAY")
	close(release)
	res := recv(t, resc, "the in-flight RoundTrip")
	if res.err != nil {
		t.Fatalf("in-flight stream failed after a graceful shutdown: %v", res.err)
	}
	rr := recv(t, goReadAll(res.resp.Body), "the in-flight answer's body")
	res.resp.Body.Close()
	if rr.err != nil || string(rr.body) != "completed" {
		t.Fatalf("in-flight answer %q, %v; want %q", rr.body, rr.err, "completed")
	}
	if err := recv(t, shutdown, "Shutdown to return"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}

	checkNextRequestRedials(t, tr, d)
}

// TestIdleConnTimeout: a connection with no stream for IdleConnTimeout
// is closed by the client.
func TestIdleConnTimeout(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), nil)
	tr, d := newTransport(t, s.addr, func(tr *h2client.Transport) { tr.IdleConnTimeout = 100 * time.Millisecond })
	roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/"), nil))
	if got := recv(t, s.closed, "the idle connection to be closed"); got != d.local(0) {
		t.Errorf("closed connection %s, want %s", got, d.local(0))
	}
	// A request after it dials again.
	roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/"), nil))
	if n := d.count(); n != 2 {
		t.Errorf("%d connections dialled, want 2", n)
	}
}

// TestCloseIdleConnections: the idle connection is closed at once; the
// busy one finishes its stream, then closes.
func TestCloseIdleConnections(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			signal(entered, struct{}{})
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}), &http.HTTP2Config{MaxConcurrentStreams: 1})
	tr, d := newTransport(t, s.addr, nil)
	// A first request: its answer comes after the server's SETTINGS, so
	// the client knows the limit of one stream from then on.
	roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/warm-up"), nil))
	resc := goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/held"), nil))
	recv(t, entered, "the held handler to start")
	// One stream per connection: this one needs a second connection,
	// idle once answered.
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/quick"), nil))
	if string(body) != "ok /quick" {
		t.Fatalf("answer %q", body)
	}
	if n := d.count(); n != 2 {
		t.Fatalf("%d connections dialled, want 2 (one stream each)", n)
	}
	tr.CloseIdleConnections()
	if got := recv(t, s.closed, "the idle connection to close"); got != d.local(1) {
		t.Errorf("first connection closed is %s, want the idle one %s (the busy one is %s)", got, d.local(1), d.local(0))
	}
	close(release)
	res := recv(t, resc, "the busy connection's stream")
	if res.err != nil {
		t.Fatalf("the busy connection's stream failed after CloseIdleConnections: %v", res.err)
	}
	rr := recv(t, goReadAll(res.resp.Body), "the busy stream's body")
	res.resp.Body.Close()
	if rr.err != nil || string(rr.body) != "ok /held" {
		t.Errorf("busy stream's answer %q, %v", rr.body, rr.err)
	}
	if got := recv(t, s.closed, "the busy connection to close after its stream"); got != d.local(0) {
		t.Errorf("second connection closed is %s, want %s", got, d.local(0))
	}
	// The Transport is still usable.
	_, body = roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/after"), nil))
	if string(body) != "ok /after" || d.count() != 3 {
		t.Errorf("answer %q after CloseIdleConnections on connection %d, want a third", body, d.count())
	}
}

// TestClose: Close fails the stream in flight; a RoundTrip after it
// fails with ErrClosed without dialling.
func TestClose(t *testing.T) {
	entered := make(chan struct{}, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(entered, struct{}{})
		<-r.Context().Done()
	}), nil)
	tr, d := newTransport(t, s.addr, nil)
	resc := goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/block"), nil))
	recv(t, entered, "the handler to start")
	closed := make(chan error, 1)
	go func() { closed <- tr.Close() }()
	if err := recv(t, closed, "Close"); err != nil {
		t.Errorf("Close: %v", err)
	}
	res := recv(t, resc, "the in-flight RoundTrip to fail after Close")
	if res.err == nil {
		res.resp.Body.Close()
		t.Fatalf("in-flight RoundTrip answered %d after Close", res.resp.StatusCode)
	}
	t.Logf("in-flight RoundTrip after Close: %v", res.err)
	res = recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/"), nil)), "RoundTrip after Close")
	if !errors.Is(res.err, h2client.ErrClosed) {
		if res.err == nil {
			res.resp.Body.Close()
		}
		t.Errorf("RoundTrip after Close: %v, want ErrClosed", res.err)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1", n)
	}
	if err := tr.Close(); err != nil {
		t.Logf("second Close: %v", err)
	}
}

// TestRequestURLForms: :authority from the URL's host when Host is
// empty, the scheme from the URL.
func TestRequestURLForms(t *testing.T) {
	type seen struct{ host, uri string }
	seenc := make(chan seen, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(seenc, seen{r.Host, r.RequestURI})
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "url-host.example", Path: "/x y"}, Header: http.Header{}}
	req = req.WithContext(testContext(t))
	roundTrip(t, tr, req)
	if got := recv(t, seenc, "the handler"); got.host != "url-host.example" || got.uri != "/x%20y" {
		t.Errorf("arrived as host %q URI %q, want url-host.example /x%%20y", got.host, got.uri)
	}
}

// TestTLS: Dial returns a TLS connection that negotiated h2 by ALPN;
// the request goes over it.
func TestTLS(t *testing.T) {
	certFile, keyFile := testcert.SelfSigned(t)
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the test's PEM")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		proto, alpn string
		tls         bool
	}
	seenc := make(chan seen, 1)
	var p http.Protocols
	p.SetHTTP2(true)
	srv := &http.Server{
		Protocols: &p,
		TLSConfig: &tls.Config{NextProtos: []string{"h2"}},
		ErrorLog:  log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := seen{proto: r.Proto, tls: r.TLS != nil}
			if r.TLS != nil {
				s.alpn = r.TLS.NegotiatedProtocol
			}
			signal(seenc, s)
			_, _ = io.WriteString(w, "over TLS")
		}),
	}
	go func() { _ = srv.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() { _ = srv.Close() })

	addr := ln.Addr().String()
	tr := &h2client.Transport{Dial: func(ctx context.Context) (net.Conn, error) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: testTimeout}, Config: &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}}}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != "h2" {
			_ = c.Close()
			return nil, fmt.Errorf("ALPN negotiated %q, want h2", got)
		}
		return c, nil
	}}
	t.Cleanup(func() { _ = tr.Close() })
	resp, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", "https://"+addr+"/tls", nil))
	if resp.StatusCode != http.StatusOK || string(body) != "over TLS" {
		t.Errorf("answer %d %q", resp.StatusCode, body)
	}
	if got := recv(t, seenc, "the handler"); got != (seen{proto: "HTTP/2.0", alpn: "h2", tls: true}) {
		t.Errorf("the server saw %+v, want HTTP/2.0 over TLS with ALPN h2", got)
	}
}

// TestConcurrentStreamsNoCrossTalk: 50 concurrent POSTs with distinct
// bodies on one connection, echoed: every answer is its own request's
// body, whole.
func TestConcurrentStreamsNoCrossTalk(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}), nil)
	tr, d := newTransport(t, s.addr, nil)
	// A first request, so that the client knows the server's limit of
	// streams (250 by default) before the burst.
	roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/"), nil))
	const n = 50
	ctx := testContext(t)
	errc := make(chan error, n)
	for i := range n {
		go func() {
			body := randomBytes(200_000+i, byte(i))
			req, err := http.NewRequestWithContext(ctx, "POST", s.url("/echo"), bytes.NewReader(body))
			if err != nil {
				errc <- err
				return
			}
			if i%2 == 1 {
				req.ContentLength = -1
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				errc <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errc <- fmt.Errorf("request %d: reading: %w", i, err)
			case !bytes.Equal(got, body):
				errc <- fmt.Errorf("request %d: echo of %d bytes (hash %s), want its own %d bytes", i, len(got), sha256Hex(got), len(body))
			default:
				errc <- nil
			}
		}()
	}
	for range n {
		if err := recv(t, errc, "a concurrent request"); err != nil {
			t.Error(err)
		}
	}
	if got := d.count(); got != 1 {
		t.Errorf("%d connections dialled, want 1", got)
	}
}

// TestEarlyAnswer: the server answers (413) without reading an 8 MiB
// request body and ends the stream; RoundTrip returns that answer rather
// than blocking on the flow-control window or failing (RFC 9113 8.1: a
// complete answer before the request is complete).
func TestEarlyAnswer(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, "too large")
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	for _, length := range []int64{8 << 20, -1} {
		t.Run(fmt.Sprintf("ContentLength=%d", length), func(t *testing.T) {
			req := newRequest(t, testContext(t), "POST", s.url("/upload"), nil)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(make([]byte, 8<<20))), length
			resp, body := roundTrip(t, tr, req)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "too large" {
				t.Errorf("answer %d %q, want 413 %q", resp.StatusCode, body, "too large")
			}
		})
	}
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/"), nil))
	if string(body) != "too large" {
		t.Errorf("next answer %q", body)
	}
}

// TestAbortWhileDialing: closing the abort channel while the connection
// waits for a node that accepted but sends no SETTINGS gives the request
// up with ErrAborted (not after the wait for SETTINGS).
func TestAbortWhileDialing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	tr, _ := newTransport(t, ln.Addr().String(), nil)
	abort := make(chan struct{})
	resc := goRoundTrip(abortTripper{tr, abort}, newRequest(t, testContext(t), "GET", "http://"+ln.Addr().String()+"/", nil))
	c := recv(t, accepted, "the dial to reach the node")
	defer c.Close()
	close(abort)
	res := recv(t, resc, "RoundTrip to return after the abort")
	if !errors.Is(res.err, h2client.ErrAborted) {
		t.Fatalf("RoundTrip error %v, want ErrAborted", res.err)
	}
}

// closeRecorder is a request body that reports its Close (and closes
// closer, if set: an io.Pipe's reader, whose blocked Read it ends).
type closeRecorder struct {
	io.Reader
	closer io.Closer
	closed chan struct{}
	once   sync.Once
}

func (c *closeRecorder) Close() error {
	c.once.Do(func() { close(c.closed) })
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

// TestRequestBodyClosed: as http.RoundTripper requires, the request body
// is closed, whether the request succeeded or failed.
func TestRequestBodyClosed(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	for _, length := range []int64{5, -1} {
		body := &closeRecorder{Reader: strings.NewReader("hello"), closed: make(chan struct{})}
		req := newRequest(t, testContext(t), "POST", s.url("/"), nil)
		req.Body, req.ContentLength = body, length
		roundTrip(t, tr, req)
		recv(t, body.closed, fmt.Sprintf("the request body (ContentLength %d) to be closed", length))
	}
	_ = tr.Close()
	body := &closeRecorder{Reader: strings.NewReader("hello"), closed: make(chan struct{})}
	req := newRequest(t, testContext(t), "POST", s.url("/"), nil)
	req.Body, req.ContentLength = body, -1
	if res := recv(t, goRoundTrip(tr, req), "RoundTrip after Close"); res.err == nil {
		res.resp.Body.Close()
		t.Fatal("RoundTrip after Close succeeded")
	}
	recv(t, body.closed, "the request body of a failed RoundTrip to be closed")
}

// failingBody returns some bytes, then an error.
type failingBody struct{ sent bool }

var errBodyBroke = errors.New("test: the client's upload broke")

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "start of the body"), nil
	}
	return 0, errBodyBroke
}

func (*failingBody) Close() error { return nil }

// TestRequestBodyError: a streamed body that fails resets the stream:
// the handler's body read fails rather than seeing a clean end, and the
// caller gets an error.
func TestRequestBodyError(t *testing.T) {
	readErr := make(chan error, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		_, err := io.Copy(io.Discard, r.Body)
		signal(readErr, err)
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	req := newRequest(t, testContext(t), "POST", s.url("/"), nil)
	req.Body, req.ContentLength = &failingBody{}, -1
	res := recv(t, goRoundTrip(tr, req), "RoundTrip")
	if res.err == nil {
		rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
		res.resp.Body.Close()
		if rr.err == nil {
			t.Errorf("the answer read to its end although the request body failed")
		}
	}
	if err := recv(t, readErr, "the handler's body read"); err == nil {
		t.Errorf("the handler read the body to a clean end; want the stream reset")
	}
}

// TestUnreadAnswerDoesNotBlockOthers: an answer left unread fills its
// stream's window, not the connection: another stream on the same
// connection completes.
func TestUnreadAnswerDoesNotBlockOthers(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, 32<<20))
			return
		}
		_, _ = io.WriteString(w, "small")
	}), nil)
	tr, d := newTransport(t, s.addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/big"), nil)), "RoundTrip")
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	for range 3 {
		_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/small"), nil))
		if string(body) != "small" {
			t.Errorf("answer %q", body)
		}
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1", n)
	}
}

// TestDiscardedAnswersReturnWindow: answers closed unread still count
// against the connection's window (RFC 9113 6.9); the client must give
// that window back, or the connection stalls after a few of them.
func TestDiscardedAnswersReturnWindow(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 1<<20))
	}), nil)
	tr, d := newTransport(t, s.addr, func(tr *h2client.Transport) {
		tr.StreamWindow, tr.ConnWindow = 256<<10, 1<<20
	})
	for i := range 20 {
		res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "GET", s.url("/"), nil)), fmt.Sprintf("RoundTrip %d", i))
		if res.err != nil {
			t.Fatalf("request %d: %v", i, res.err)
		}
		if _, err := io.ReadFull(res.resp.Body, make([]byte, 1)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		res.resp.Body.Close()
	}
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s.url("/"), nil))
	if len(body) != 1<<20 {
		t.Errorf("last answer %d bytes, want %d", len(body), 1<<20)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1", n)
	}
}

// TestStreamedBodyClosedOnFailure: a streamed request body whose Read
// blocks (a client upload that stalled) is closed when the stream fails
// (cancel, reset by the node, Transport.Close), so that the goroutine
// reading it ends; http.RoundTripper's contract asks for the Close.
func TestStreamedBodyClosedOnFailure(t *testing.T) {
	for _, how := range []string{"cancel", "node reset", "Close"} {
		t.Run(how, func(t *testing.T) {
			entered := make(chan struct{}, 1)
			s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadFull(r.Body, make([]byte, 5))
				signal(entered, struct{}{})
				if how == "node reset" {
					panic(http.ErrAbortHandler)
				}
				<-r.Context().Done()
			}), nil)
			tr, _ := newTransport(t, s.addr, nil)
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			pr, pw := io.Pipe()
			defer pw.Close()
			body := &closeRecorder{Reader: pr, closer: pr, closed: make(chan struct{})}
			req := newRequest(t, ctx, "POST", s.url("/upload"), nil)
			req.Body, req.ContentLength = body, -1
			resc := goRoundTrip(tr, req)
			wrote := make(chan error, 1)
			go func() {
				_, err := io.WriteString(pw, "start") // then nothing: the upload stalls
				wrote <- err
			}()
			if err := recv(t, wrote, "the body's first bytes to be read"); err != nil {
				t.Fatal(err)
			}
			recv(t, entered, "the handler to read the start of the body")
			switch how {
			case "cancel":
				cancel()
			case "Close":
				_ = tr.Close()
			}
			if res := recv(t, resc, "RoundTrip to fail"); res.err == nil {
				res.resp.Body.Close()
				t.Fatalf("answer %d", res.resp.StatusCode)
			}
			recv(t, body.closed, "the request body to be closed after the stream failed")
		})
	}
}

// TestHeadRequest: the answer to HEAD carries the content-length of the
// GET it stands for and no body (RFC 9110 9.3.2): it is not malformed.
func TestHeadRequest(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "hello")
		}
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	res := recv(t, goRoundTrip(tr, newRequest(t, testContext(t), "HEAD", s.url("/"), nil)), "RoundTrip")
	if res.err != nil {
		t.Fatalf("HEAD: %v", res.err)
	}
	rr := recv(t, goReadAll(res.resp.Body), "the answer's body")
	res.resp.Body.Close()
	if res.resp.StatusCode != http.StatusOK || len(rr.body) != 0 || rr.err != nil {
		t.Errorf("HEAD answer %d, body %q, %v; want 200, no body", res.resp.StatusCode, rr.body, rr.err)
	}
	if res.resp.ContentLength != 5 {
		t.Logf("HEAD answer ContentLength %d (content-length: 5)", res.resp.ContentLength)
	}
}

// checkNextRequestRedials points the dialer at a second server and checks
// that the next request is answered there, on a second connection: the
// first one is gone.
func checkNextRequestRedials(t *testing.T, tr *h2client.Transport, d *dialer) {
	t.Helper()
	s2 := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "second server")
	}), nil)
	d.retarget(s2.addr)
	_, body := roundTrip(t, tr, newRequest(t, testContext(t), "GET", s2.url("/"), nil))
	if string(body) != "second server" {
		t.Errorf("answer %q", body)
	}
	if n := d.count(); n != 2 {
		t.Errorf("%d connections dialled, want 2", n)
	}
}
