package frontend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// sseNode answers /v1/chat/completions with an event stream of n events
// and data: [DONE] (after release, when given), and anything else with a
// small JSON body.
func sseNode(t *testing.T, n int, release <-chan struct{}) string {
	t.Helper()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.URL.Path != "/v1/chat/completions" {
			_, _ = io.WriteString(w, `{"buffered":true}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(node.Close)
	return strings.TrimPrefix(node.URL, "http://")
}

func streamRequest(extra string) string {
	body := `{"model":"m","stream":true}`
	return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" + extra +
		fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

const bufferedRequest = "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}"

// dialFrontend connects to a frontend, with a 10 s deadline on the
// connection; the test's end closes it.
func dialFrontend(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readAnswer reads one response from br and its whole body.
func readAnswer(t *testing.T, br *bufio.Reader) (*http.Response, string, error) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// TestStreamKeepsConnection: a streamed answer is relayed chunk by chunk
// on its hijacked connection, which then serves the client's next
// requests — sent after the stream, or pipelined behind it — in order.
func TestStreamKeepsConnection(t *testing.T) {
	fe := startFrontend(t, sseNode(t, 3, nil), io.Discard)
	c := dialFrontend(t, fe.addr)
	br := bufio.NewReader(c)
	wantStream := "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: [DONE]\n\n"
	check := func(what string, wantBody string, chunked bool) {
		t.Helper()
		resp, body, err := readAnswer(t, br)
		if err != nil || resp.StatusCode != 200 || body != wantBody {
			t.Fatalf("%s: %d %q, %v", what, resp.StatusCode, body, err)
		}
		if got := len(resp.TransferEncoding) > 0; got != chunked {
			t.Fatalf("%s: chunked %v, want %v", what, got, chunked)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: no X-Request-Id", what)
		}
	}
	for i := range 2 {
		if _, err := io.WriteString(c, streamRequest("")); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("stream %d", i), wantStream, true)
	}
	// Pipelined: a stream, a buffered request and another stream in one
	// write; the answers come back in order on the same connection.
	if _, err := io.WriteString(c, streamRequest("")+bufferedRequest+streamRequest("")); err != nil {
		t.Fatal(err)
	}
	check("pipelined stream", wantStream, true)
	check("pipelined buffered request", `{"buffered":true}`, false)
	check("pipelined second stream", wantStream, true)
	// The last answer's terminating chunk goes out before the relay
	// settles the exchange: the count reaches 0 just after the client
	// has read it, not necessarily before.
	deadline := time.Now().Add(5 * time.Second)
	for fe.core.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight 5 s after the answers: %d", fe.core.InFlight())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStreamOutlivesItsRequest: a streamed answer is relayed after
// fasthttp recycled the request it answers (the relay leaves the hijack
// goroutine, relay.detach), while other connections' requests reuse
// fasthttp's RequestCtx objects. The stream still ends whole, and the
// access log reports its own method, path, request ID and model, not
// another request's.
func TestStreamOutlivesItsRequest(t *testing.T) {
	release := make(chan struct{})
	var logs testlog.Buffer
	fe := startFrontendWith(t, sseNode(t, 1, release), &logs, func(c *config.Config) { c.Telemetry.AccessLog = true })
	c := dialFrontend(t, fe.addr)
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, streamRequest("X-Request-Id: stream-a\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: {\"i\":0}\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: {\"i\":0}\n\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	// Other requests, with other paths, IDs and models, on connections of
	// their own, while the stream waits.
	for i := range 16 {
		o := dialFrontend(t, fe.addr)
		obr := bufio.NewReader(o)
		body := fmt.Sprintf(`{"model":"not-m-%05d"}`, i)
		req := fmt.Sprintf("POST /v1/completions?n=%d HTTP/1.1\r\nHost: other\r\nX-Request-Id: other-%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", i, i, len(body), body)
		if _, err := io.WriteString(o, req); err != nil {
			t.Fatal(err)
		}
		if r, _, err := readAnswer(t, obr); err != nil || r.StatusCode != 404 {
			t.Fatalf("other request %d: %v %v", i, r.Status, err)
		}
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: [DONE]\n\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "request_id=stream-a") {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the stream 5 s after its end:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "request_id=stream-a") {
			continue
		}
		for _, want := range []string{"method=POST", "path=/v1/chat/completions", "model=m ", "status=200"} {
			if !strings.Contains(line, want) {
				t.Errorf("the stream's access log line lacks %q: %s", want, line)
			}
		}
	}
}

// TestStreamConnectionClose: a client that asks to close gets its stream,
// then the connection closes.
func TestStreamConnectionClose(t *testing.T) {
	fe := startFrontend(t, sseNode(t, 1, nil), io.Discard)
	c := dialFrontend(t, fe.addr)
	if _, err := io.WriteString(c, streamRequest("Connection: close\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, body, err := readAnswer(t, br)
	if err != nil || !strings.HasSuffix(body, "data: [DONE]\n\n") || !resp.Close {
		t.Fatalf("stream: %q, %v, close %v", body, err, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the stream: %v, want the connection closed", err)
	}
}

// TestStreamShutdown: Shutdown waits for a stream under way to end within
// its bound; past the bound it cuts the stream (no terminating chunk; the
// watchdog then aborts the node's side) and returns once the relay ended,
// and nothing stays in flight.
func TestStreamShutdown(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finishes=%v", finish), func(t *testing.T) {
			release := make(chan struct{})
			fe := startFrontend(t, sseNode(t, 1, release), io.Discard)
			c := dialFrontend(t, fe.addr)
			if _, err := io.WriteString(c, streamRequest("")); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := make([]byte, len("data: {\"i\":0}\n\n"))
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("first event: %v", err)
			}
			bound := 300 * time.Millisecond
			if finish {
				bound = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			done := make(chan struct{})
			go func() {
				fe.s.Shutdown(ctx, fe.ln)
				close(done)
			}()
			if finish {
				select {
				case <-done:
					t.Fatal("Shutdown returned while a stream was under way")
				case <-time.After(100 * time.Millisecond):
				}
				close(release)
			} else {
				defer close(release)
			}
			<-done
			if n := fe.s.relays.count(); n != 0 {
				t.Fatalf("%d streams still relayed after Shutdown", n)
			}
			rest, err := io.ReadAll(resp.Body)
			switch {
			case finish && (err != nil || string(rest) != "data: [DONE]\n\n"):
				t.Fatalf("a stream that ended within the bound: %q, %v", rest, err)
			case !finish && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("a stream cut at the bound: %q, %v; want a truncated body", rest, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for fe.core.InFlight() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("in flight after shutdown: %d", fe.core.InFlight())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
