package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
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
