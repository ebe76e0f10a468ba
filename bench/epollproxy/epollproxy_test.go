package epollproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testnode"
	"github.com/valyala/fasthttp"
)

// node starts a fasthttp server that answers "name:path:body".
func node(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{MaxRequestBodySize: 4 << 20, Handler: func(c *fasthttp.RequestCtx) {
		c.SetBodyString(name + ":" + string(c.Path()) + ":" + string(c.PostBody()))
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// start runs a proxy to ups until the test ends, and checks that Serve
// returned nil.
func start(t *testing.T, ups ...string) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", ups)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p
}

func TestProxiesInTurn(t *testing.T) {
	p := start(t, node(t, "a"), node(t, "b"))
	c := &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	big := strings.Repeat("x", 300<<10) // larger than the first buffer
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		body := fmt.Sprint(i)
		if i == 5 {
			body = big
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + p.Addr() + "/p")
		req.Header.SetMethod("POST")
		req.SetBodyString(body)
		if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		got := string(resp.Body())
		name, rest, _ := strings.Cut(got, ":")
		if rest != "/p:"+body {
			t.Fatalf("request %d: answer %.40q… (%d bytes)", i, got, len(got))
		}
		seen[name]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("nodes in turn: %v", seen)
	}
}

func TestPipelinedAnswersInOrder(t *testing.T) {
	p := start(t, node(t, "a"))
	conn := dial(t, p)
	var reqs bytes.Buffer
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&reqs, "POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d", i, i)
	}
	if _, err := conn.Write(reqs.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := 0; i < 3; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("a:/%d:%d", i, i); string(b) != want {
			t.Fatalf("answer %d: %q, want %q", i, b, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	dead, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	for _, tc := range []struct {
		name, up, req string
		status        int
	}{
		{"chunked", node(t, "a"), "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 501},
		{"bad length", node(t, "a"), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"no colon", node(t, "a"), "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
		{"node down", deadAddr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dial(t, start(t, tc.up))
			if _, err := io.WriteString(conn, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
}

// A node that closes before its whole answer is out: the client gets a 502,
// not a short answer.
func TestNodeCutsAnswer(t *testing.T) {
	addr := rawNode(t, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
		c.Close()
	})
	conn := dial(t, start(t, addr))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}

func TestServeStopsAndCloses(t *testing.T) {
	p, err := Listen("127.0.0.1:0", []string{node(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	conn := dial(t, p)
	br := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil) // accepted: a kept-alive connection
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "a:/:" {
		t.Fatalf("answer %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("open connection after Serve: read %v, want EOF", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts after Serve")
	}
	if _, err := Listen("127.0.0.1:0", nil); err == nil {
		t.Fatal("no upstreams: no error")
	}
}

// rawNode serves each connection with handle, on its own goroutine, and
// closes them all when the test ends.
func rawNode(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	return testnode.Serve(t, "tcp4", handle)
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A node that answers before it has read the whole request (an early 413,
// with Connection: close): the answer reaches the client, that node
// connection is closed rather than reused, and the client's next request
// goes out whole on a new one.
func TestEarlyAnswer(t *testing.T) {
	addr := rawNode(t, func(c net.Conn) {
		// The connection stays open, unread, until the test ends: closing
		// it early would reset the answer.
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if req.ContentLength > 1<<16 {
			_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	conn := dial(t, start(t, addr))
	big := strings.Repeat("x", 900<<10)
	go func() {
		_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "+fmt.Sprint(len(big))+"\r\n\r\n"+big)
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("next request: %d %q", resp.StatusCode, b)
	}
}

func FuzzMessageLen(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), true)
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), false)
	f.Add([]byte("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, answer bool) {
		total, _, status := messageLen(b, answer)
		switch {
		case status != "":
			if total != 0 {
				t.Fatalf("status %q with length %d", status, total)
			}
		case total != 0:
			end := bytes.Index(b, []byte("\r\n\r\n"))
			if end < 0 || total < end+4 || total > end+4+maxBuf {
				t.Fatalf("length %d for a head ending at %d", total, end)
			}
		}
	})
}
