package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStreamRequestBody: with limits.stream_body_over a large body reaches
// the node while the client is still sending it; limits still hold.
func TestStreamRequestBody(t *testing.T) {
	const total = 2 << 20
	gotHalf := make(chan struct{})
	be := backend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		// Signal once a quarter of the body is here: intermediate buffers
		// may hold some, but a gateway that buffers the whole body would
		// deliver nothing before the client finished.
		buf := make([]byte, 32<<10)
		n, signalled := 0, false
		for {
			k, err := r.Body.Read(buf)
			n += k
			if !signalled && n >= total/4 && r.URL.Path == "/v2/models/tensor/infer" {
				signalled = true
				close(gotHalf)
			}
			if err != nil {
				break
			}
		}
		_, _ = io.WriteString(w, strconv.Itoa(n))
	})
	echo := backend(t, "echo", nil)
	cfg := testConfig(
		RouteConfig{Name: "tensor", Match: MatchConfig{Models: []string{"tensor"}, PathPrefix: "/v2/"}, Nodes: []NodeConfig{{HTTP: hostOf(be)}}},
		staticRoute("chat", echo.URL),
	)
	cfg.Limits.StreamBodyOver = 64 << 10
	cfg.Limits.MaxBodyBytes = 4 << 20
	gw := startGateway(t, cfg)
	c := testClient()

	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent := 0; sent < total/2; sent += len(chunk) {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case <-gotHalf:
		case <-timer.C:
			pw.CloseWithError(io.ErrUnexpectedEOF) // the gateway buffered: give up
			return
		}
		for sent := 0; sent < total/2; sent += len(chunk) {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", gw.url("/v2/models/tensor/infer"), pr)
	req.ContentLength = total
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("streamed body: %v (did the gateway buffer it?)", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != strconv.Itoa(total) {
		t.Fatalf("streamed body: %d %s", resp.StatusCode, b)
	}

	// Over the limit by Content-Length: 413 before reading.
	req, _ = http.NewRequest("POST", gw.url("/v2/models/tensor/infer"), bytes.NewReader(make([]byte, 5<<20)))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("over the limit: %d", resp.StatusCode)
		}
	}
	// Chunked JSON is read (with the limit) and routed by its model.
	req, _ = http.NewRequest("POST", gw.url("/v1/chat/completions"), io.MultiReader(strings.NewReader(`{"model":"chat","p":"`), strings.NewReader(strings.Repeat("a", 100<<10)+`"}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "echo" || !strings.Contains(string(b), `"bytes":102423`) {
		t.Fatalf("chunked JSON: %d %s", resp.StatusCode, b)
	}
	// Chunked over the limit: 413.
	req, _ = http.NewRequest("POST", gw.url("/v1/chat/completions"), io.MultiReader(strings.NewReader(`{"model":"chat","p":"`), bytes.NewReader(bytes.Repeat([]byte("a"), 5<<20))))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("chunked over the limit: %d", resp.StatusCode)
		}
	}
	// Small bodies still work as before.
	if resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"chat"}`); resp.StatusCode != 200 {
		t.Fatalf("small body: %d %s", resp.StatusCode, body)
	}
}
