package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The limits of the declared-size tests: the read timeout is long so that
// an answer that waits for the body (or for the timeout) shows as a hang,
// caught by guardWait, never as a late 408.
const (
	oversizeLimit = 1 << 20
	declaredSize  = 10_000_000
	guardWait     = 20 * time.Second // only against a hang; no test measures speed
)

// oversizeGateway serves a route "m" whose node counts the requests it
// sees, with max_body_bytes 1 MiB and read_timeout 1 minute.
func oversizeGateway(t *testing.T, streamOver int) (*testGateway, *atomic.Int64) {
	t.Helper()
	var seen atomic.Int64
	be := backend(t, "n", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/completions" { // not the health checks
			seen.Add(1)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"bytes":`+strconv.FormatInt(n, 10)+`}`)
	})
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.MaxBodyBytes = oversizeLimit
	cfg.Limits.StreamBodyOver = streamOver
	cfg.Limits.ReadTimeout = time.Minute
	return startGateway(t, cfg), &seen
}

// h1Conn is a raw HTTP/1.1 client connection to the gateway.
type h1Conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialH1(t *testing.T, addr string) *h1Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(guardWait))
	return &h1Conn{t: t, c: c, br: bufio.NewReader(c)}
}

func (h *h1Conn) write(s string) {
	h.t.Helper()
	if _, err := io.WriteString(h.c, s); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

// answer reads one response (an interim 1xx included) and its body.
func (h *h1Conn) answer() (*http.Response, []byte) {
	h.t.Helper()
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		h.t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		h.t.Fatalf("reading the answer's body: %v", err)
	}
	return resp, b
}

// closedByGateway reports whether the gateway ended the connection (EOF)
// with nothing more to read: no reset, no answer to a "next request".
func (h *h1Conn) closedByGateway() bool {
	n, err := h.br.Read(make([]byte, 1))
	return n == 0 && err == io.EOF
}

// wantTooLarge checks an HTTP/1.1 413 in the gateway's JSON error shape
// that closes the connection (the rest of the body is not a request).
func wantTooLarge(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("no Connection: close on the 413")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if e := decodeError(t, body); e.Error.Code != "request_too_large" || e.Error.Type != "invalid_request_error" {
		t.Errorf("error body %s: want code request_too_large, type invalid_request_error", body)
	}
}

func oversizeHead(extra string) string {
	return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(declaredSize) + "\r\n" + extra + "\r\n"
}

// TestDeclaredOversizedBodyHTTP1: a request whose Content-Length is over
// limits.max_body_bytes is answered 413 as soon as its headers are read,
// whatever part of its body has arrived (the read timeout is a minute and
// the client waits for the answer), then the connection is closed
// lingering so the answer is not lost; never a 100 Continue. A declared
// size within the limit still works; a chunked body gets 413 once it
// passes the limit. Both with streamed and with buffered bodies.
func TestDeclaredOversizedBodyHTTP1(t *testing.T) {
	for _, mode := range []struct {
		name       string
		streamOver int
	}{
		{"streamed bodies", 64 << 10},
		{"buffered bodies", -1},
	} {
		t.Run(mode.name, func(t *testing.T) {
			gw, seen := oversizeGateway(t, mode.streamOver)
			t.Run("100 bytes of the body sent", func(t *testing.T) {
				h := dialH1(t, gw.addr)
				h.write(oversizeHead("") + `{"model":"m","p":"` + strings.Repeat("a", 100-18))
				resp, body := h.answer()
				wantTooLarge(t, resp, body)
				if !h.closedByGateway() {
					t.Errorf("the connection stayed open after the 413")
				}
			})
			t.Run("a megabyte of the body sent", func(t *testing.T) {
				// More than the gateway's buffers hold: unread bytes
				// that a plain close would answer with a reset,
				// which can destroy the 413 before the client reads it.
				h := dialH1(t, gw.addr)
				h.write(oversizeHead(""))
				wrote := make(chan struct{})
				go func() {
					defer close(wrote)
					chunk := strings.Repeat("a", 64<<10)
					for range 16 {
						if _, err := io.WriteString(h.c, chunk); err != nil {
							return
						}
					}
				}()
				<-wrote
				resp, body := h.answer()
				wantTooLarge(t, resp, body)
				if !h.closedByGateway() {
					t.Errorf("the connection was not closed cleanly after the 413")
				}
			})
			t.Run("no body sent", func(t *testing.T) {
				h := dialH1(t, gw.addr)
				h.write(oversizeHead(""))
				resp, body := h.answer()
				wantTooLarge(t, resp, body)
			})
			t.Run("expect 100-continue", func(t *testing.T) {
				// 413, not 417: the expectation itself is fine, the
				// declared content is too large (RFC 9110 §10.1.1
				// lets a server answer a final status instead of 100).
				h := dialH1(t, gw.addr)
				h.write(oversizeHead("Expect: 100-continue\r\n"))
				resp, body := h.answer() // a 100 Continue would be read here
				wantTooLarge(t, resp, body)
			})
			t.Run("expect 100-continue within the limit", func(t *testing.T) {
				h := dialH1(t, gw.addr)
				payload := `{"model":"m","p":"` + strings.Repeat("a", 100<<10) + `"}`
				h.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
					"Content-Length: " + strconv.Itoa(len(payload)) + "\r\nExpect: 100-continue\r\n\r\n")
				if resp, body := h.answer(); resp.StatusCode != http.StatusContinue {
					t.Fatalf("got %d %s, want 100 Continue", resp.StatusCode, body)
				}
				h.write(payload)
				resp, body := h.answer()
				if resp.StatusCode != 200 || string(body) != `{"bytes":`+strconv.Itoa(len(payload))+`}` {
					t.Fatalf("got %d %s, want 200 and the whole body at the node", resp.StatusCode, body)
				}
			})
			t.Run("declared within the limit", func(t *testing.T) {
				h := dialH1(t, gw.addr)
				payload := `{"model":"m","p":"` + strings.Repeat("a", 200<<10) + `"}`
				h.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
					"Content-Length: " + strconv.Itoa(len(payload)) + "\r\n\r\n" + payload)
				resp, body := h.answer()
				if resp.StatusCode != 200 || string(body) != `{"bytes":`+strconv.Itoa(len(payload))+`}` {
					t.Fatalf("got %d %s, want 200 and the whole body at the node", resp.StatusCode, body)
				}
			})
			t.Run("chunked past the limit", func(t *testing.T) {
				h := dialH1(t, gw.addr)
				h.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
				// 2 MiB in chunks, from another goroutine: the gateway
				// may answer (and stop reading) before the last one.
				wrote := make(chan struct{})
				go func() {
					defer close(wrote)
					chunk := strings.Repeat("a", 64<<10)
					frame := strconv.FormatInt(int64(len(chunk)), 16) + "\r\n" + chunk + "\r\n"
					for range 32 {
						if _, err := io.WriteString(h.c, frame); err != nil {
							return // the gateway closed after its answer
						}
					}
				}()
				resp, body := h.answer()
				<-wrote
				wantTooLarge(t, resp, body)
				if !h.closedByGateway() {
					t.Errorf("the connection was not closed cleanly after the 413")
				}
			})
			if n := seen.Load(); n != 2 {
				t.Errorf("the node saw %d requests, want 2 (the two within the limit)", n)
			}
			// The gateway still serves after the refusals.
			if resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`); resp.StatusCode != 200 {
				t.Fatalf("a small request after the refusals: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestDeclaredOversizedBodyHTTP2: an HTTP/2 request whose content-length
// is over limits.max_body_bytes gets 413 in the JSON error shape while
// its body is still open (100 bytes of DATA sent, no END_STREAM); one
// within the limit on the same connection still works.
func TestDeclaredOversizedBodyHTTP2(t *testing.T) {
	gw, seen := oversizeGateway(t, 64<<10)
	h := dialH2c(t, gw.addr, guardWait)
	defer h.c.Close()
	fr := h.fr
	headers := func(id uint32, size int) {
		t.Helper()
		h.headers(t, id, "/v1/completions", [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(size)}})
	}
	headers(1, declaredSize)
	if err := fr.WriteData(1, false, []byte(`{"model":"m","p":"`+strings.Repeat("a", 100-18))); err != nil {
		t.Fatal(err)
	}
	a := readH2Answer(t, fr, 1)
	if a.status != "413" {
		t.Fatalf("got %+v, want 413", a)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if e := decodeError(t, []byte(a.body)); e.Error.Code != "request_too_large" {
		t.Errorf("error body %s: want code request_too_large", a.body)
	}

	// Stream 3, within the limit, on the same connection.
	payload := `{"model":"m","p":"` + strings.Repeat("a", 1000) + `"}`
	headers(3, len(payload))
	if err := fr.WriteData(3, true, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if a := readH2Answer(t, fr, 3); a.status != "200" || a.body != `{"bytes":`+strconv.Itoa(len(payload))+`}` {
		t.Fatalf("within the limit: got %+v, want 200 and the whole body at the node", a)
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("the node saw %d requests, want 1", n)
	}
}
