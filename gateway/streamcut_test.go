package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawNode is a node that answers every request with raw bytes and then
// closes the connection: what a killed engine leaves on the wire.
func rawNode(t *testing.T, answer string) string {
	t.Helper()
	return connNode(t, 10*time.Second, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(c, answer)
	})
}

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"

// TestStreamCutIsAnError: a node that ends a stream before its end — a
// chunked body without the terminal chunk, an OpenAI event stream
// without data: [DONE] on a connection read to its close — is a failed
// request: the HTTP/1.1 client's body ends in an error (no terminal
// chunk), the HTTP/2 client's stream is reset, and the route counts a
// 5xx. A complete stream still ends cleanly.
func TestStreamCutIsAnError(t *testing.T) {
	chunk := func(s string) string { return strings.ToUpper(itoaHex(len(s))) + "\r\n" + s + "\r\n" }
	ev := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
	cases := []struct {
		name, answer string
		cut          bool
	}{
		{"chunked, no terminal chunk", sseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk(ev) + chunk(ev), true},
		{"read to close, no [DONE]", sseHead + "Connection: close\r\n\r\n" + ev + ev, true},
		{"chunked, complete", sseHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk(ev) + chunk("data: [DONE]\n\n") + "0\r\n\r\n", false},
		{"read to close, with [DONE]", sseHead + "Connection: close\r\n\r\n" + ev + "data: [DONE]\n\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := rawNode(t, tc.answer)
			cfg := testConfig(staticRoute("m", "http://"+node))
			cfg.Routes[0].Retries.Attempts = -1
			gw := startGateway(t, cfg)
			body := `{"model":"m","stream":true,"messages":[]}`
			for _, h2 := range []bool{false, true} {
				c := testClient()
				if h2 {
					c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
				}
				req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(got), "hi") {
					t.Fatalf("h2=%v: status %d body %q", h2, resp.StatusCode, got)
				}
				if tc.cut && rerr == nil {
					t.Errorf("h2=%v: a cut stream ended cleanly (%q)", h2, got)
				}
				if !tc.cut && rerr != nil {
					t.Errorf("h2=%v: a complete stream failed: %v", h2, rerr)
				}
			}
			st := gw.g.core.Routes().Route("m").Stats()
			waitFor(t, 5*time.Second, "both requests counted", func() bool { return st.Answered() == 2 })
			if fails := st.Failed(); tc.cut && fails != 2 || !tc.cut && fails != 0 {
				t.Errorf("route counted %d failed streams", fails)
			}
		})
	}
}

func itoaHex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 16 {
		b = append([]byte{digits[n%16]}, b...)
	}
	return string(b)
}
