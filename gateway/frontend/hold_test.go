package frontend

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// blockingNode answers {"n":"<path>"}; the first request waits until
// release is closed, and got says when it arrived.
func blockingNode(t *testing.T) (addr string, got <-chan struct{}, release chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	release = make(chan struct{})
	first := make(chan struct{}, 1)
	first <- struct{}{}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-first:
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"n":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(node.Close)
	return strings.TrimPrefix(node.URL, "http://"), arrived, release
}

func completion(path string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}"
}

// TestPipelinedBehindHeldAnswer: a client that sends its next request
// while the gateway still works on the first one (HTTP/1.1 pipelining)
// gets both answers in order, although its second request reached the
// socket before the first answer was held and written
// (deadline.Client.HoldNextWrite).
func TestPipelinedBehindHeldAnswer(t *testing.T) {
	node, arrived, release := blockingNode(t)
	fe := startFrontend(t, node, io.Discard)
	c := dialFrontend(t, fe.addr)
	if _, err := io.WriteString(c, completion("/v1/completions")); err != nil {
		t.Fatal(err)
	}
	<-arrived // the gateway read the first request whole and waits on the node
	if _, err := io.WriteString(c, completion("/v1/chat/completions")); err != nil {
		t.Fatal(err)
	}
	close(release)
	br := bufio.NewReader(c)
	for _, want := range []string{`{"n":"/v1/completions"}`, `{"n":"/v1/chat/completions"}`} {
		resp, body, err := readAnswer(t, br)
		if err != nil || resp.StatusCode != 200 || body != want {
			t.Fatalf("answer %d %q, %v; want %s", resp.StatusCode, body, err, want)
		}
	}
}

// TestHalfClosedClientGetsAnswer: a client that sends its request and
// then closes its sending side still gets the whole answer, then the
// gateway closes the connection.
func TestHalfClosedClientGetsAnswer(t *testing.T) {
	node, _, release := blockingNode(t)
	close(release)
	fe := startFrontend(t, node, io.Discard)
	c := dialFrontend(t, fe.addr)
	if _, err := io.WriteString(c, completion("/v1/completions")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, body, err := readAnswer(t, br)
	if err != nil || resp.StatusCode != 200 || body != `{"n":"/v1/completions"}` {
		t.Fatalf("answer %d %q, %v", resp.StatusCode, body, err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the answer: %q, %v; want the connection closed", rest, err)
	}
}

// TestReplayFlushesHeldAnswer: bytes replayed after a stream (a request
// the client pipelined behind it) are served only after the held answer
// before them went out: the read that returns them never reaches the
// socket, so it must not leave the answer waiting.
func TestReplayFlushesHeldAnswer(t *testing.T) {
	client, server := tcpPair(t)
	cc := newClientConn(&countedConn{Conn: server, l: &connLimits{}})
	defer cc.Close()
	cc.pre = []byte("next request")
	cc.HoldNextWrite(true)
	if _, err := io.WriteString(cc, "answer"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := cc.Read(buf); err != nil || string(buf[:n]) != "next request" {
		t.Fatalf("read %q, %v; want the replayed bytes", buf[:n], err)
	}
	got := make([]byte, len("answer"))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "answer" {
		t.Fatalf("client got %q, %v; want the held answer", got, err)
	}
}
