package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBodiesIntact: request bodies of every size up to the streaming
// threshold reach the node byte for byte, and answers of the same sizes
// the client, over kept-alive connections on both sides. Bodies larger
// than a writer's buffer (16 KiB) are written in several pieces, and a
// held write must neither alias a buffer the next piece reuses
// (deadline.Upstream.Hold) nor be overtaken by the next piece
// (deadline.Client.HoldNextWrite).
func TestBodiesIntact(t *testing.T) {
	be := backend(t, "sum", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Sha256", hex.EncodeToString(sum[:]))
		_, _ = w.Write(body) // the answer: the request, echoed
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	c := testClient()
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	for _, size := range []int{100, 4 << 10, 16<<10 - 200, 16 << 10, 16<<10 + 1, 40 << 10, 100 << 10, 900 << 10} {
		for round := range 3 {
			pad := make([]byte, size)
			for i := range pad {
				pad[i] = letters[rng.IntN(len(letters))]
			}
			body := `{"model":"m","pad":"` + string(pad) + `"}`
			sum := sha256.Sum256([]byte(body))
			resp, got := post(t, c, gw.url("/v1/completions"), body)
			if resp.StatusCode != 200 || resp.Header.Get("X-Sha256") != hex.EncodeToString(sum[:]) {
				t.Fatalf("%d-byte pad, round %d: %d, the node got a body with sha256 %s, want %x",
					size, round, resp.StatusCode, resp.Header.Get("X-Sha256"), sum)
			}
			if string(got) != body {
				t.Fatalf("%d-byte pad, round %d: the answer (%d bytes) differs from the body the node echoed (%d bytes)",
					size, round, len(got), len(body))
			}
		}
	}
}

// TestEarlyAnswerToLargeRequest: a node that answers as soon as it has
// a request's head, before its body (a 413, a 401), and keeps the
// connection open, is heard at once. A request larger than the upstream
// writer is written in pieces, so such an answer can arrive before the
// last piece; that piece must not be held (deadline.Upstream.Hold),
// since readiness from before a held write is not seen.
func TestEarlyAnswerToLargeRequest(t *testing.T) {
	node := connNode(t, 20*time.Second, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"early\":true}\n")
		_, _ = io.Copy(io.Discard, br) // keeps the connection open, reading the body
	})
	cfg := testConfig(staticRoute("m", "http://"+node))
	cfg.Routes[0].Timeouts.FirstByte = time.Minute // longer than the client waits
	cfg.Routes[0].Timeouts.Total = time.Minute
	gw := startGateway(t, cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	body := `{"model":"m","pad":"` + strings.Repeat("x", 200<<10) + `"}`
	resp, got := post(t, c, gw.url("/v1/completions"), body)
	if resp.StatusCode != 413 || !strings.Contains(string(got), "early") {
		t.Fatalf("%d %s; want the node's early 413", resp.StatusCode, got)
	}
}
