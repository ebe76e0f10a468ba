package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// slowReadGateway is a gateway with a 300 ms write timeout in front of a
// node that answers 16 MiB at once (buffered by the gateway) or streams
// it (the "stream" model, relayed as it comes).
func slowReadGateway(t *testing.T) (gw *testGateway, size int, asked *atomic.Int64) {
	t.Helper()
	size = 16 << 20
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	asked = new(atomic.Int64)
	be := backend(t, "big", func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		stream := bytes.Contains(body, []byte(`"stream":true`))
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.WriteTimeout = 300 * time.Millisecond
	return startGateway(t, cfg), size, asked
}

// TestSlowReaderDropped: a client that sends a request and then reads
// nothing loses its connection once a write to it has waited
// limits.write_timeout (a slow-read attack pins nothing for long); it can
// then read only part of the answer. Over HTTP/1.1 with a buffered answer
// and a relayed stream, and over h2c with flow-control windows wide open.
func TestSlowReaderDropped(t *testing.T) {
	gw, size, asked := slowReadGateway(t)
	open0, _ := gw.g.front.OpenConnections()
	// Each case first waits until the node got its request (the gateway
	// had the connection open then; polling the open count instead
	// would race with the drop), then until the connection is gone.
	dropped := func(t *testing.T) {
		t.Helper()
		waitFor(t, 10*time.Second, "the gateway to drop the client that reads nothing", func() bool {
			o, _ := gw.g.front.OpenConnections()
			return o <= open0
		})
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("http1 stream=%v", stream), func(t *testing.T) {
			c, err := net.Dial("tcp", gw.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
			body := fmt.Sprintf(`{"model":"m","stream":%v}`, stream)
			n0 := asked.Load()
			fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			waitFor(t, 10*time.Second, "the node to get the request", func() bool { return asked.Load() > n0 })
			dropped(t)
			// What the gateway's socket still holds arrives, then
			// nothing: a connection still served would deliver all
			// 16 MiB within this deadline.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := io.Copy(io.Discard, c)
			if n >= int64(size) {
				t.Fatalf("the client read %d bytes (%v): the whole answer, so nothing was dropped", n, err)
			}
			t.Logf("read %d of %d bytes, then %v", n, size, err)
		})
	}
	t.Run("h2c", func(t *testing.T) {
		h := dialH2c(t, gw.addr, 10*time.Second)
		defer h.c.Close()
		_ = h.c.(*net.TCPConn).SetReadBuffer(4 << 10)
		// Windows wide open: flow control never stops the gateway.
		if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
			t.Fatal(err)
		}
		if err := h.fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
			t.Fatal(err)
		}
		n0 := asked.Load()
		h.headers(t, 1, "/v1/completions", [][2]string{{"content-type", "application/json"}})
		if err := h.fr.WriteData(1, true, []byte(`{"model":"m"}`)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the node to get the request", func() bool { return asked.Load() > n0 })
		dropped(t)
		_ = h.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var data int
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Logf("read %d of %d body bytes, then %v", data, size, err)
				break
			}
			if d, ok := f.(*http2.DataFrame); ok {
				data += len(d.Data())
			}
		}
		if data >= size {
			t.Fatalf("the client read the whole answer (%d bytes): nothing was dropped", data)
		}
	})
}

// TestStreamOutlivesWriteTimeout: write_timeout bounds each write, not an
// answer: a stream whose client reads it goes on past it, to its end.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	const chunks = 8
	be := backend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range chunks {
			fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // the stream's pace: 8 chunks over 0.8 s
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.WriteTimeout = 300 * time.Millisecond
	gw := startGateway(t, cfg)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			c := testClient()
			if h2 {
				c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
			}
			resp, err := c.Post(gw.url("/v1/completions"), "application/json", strings.NewReader(`{"model":"m","stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			events := 0
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					events++
				}
			}
			if err := sc.Err(); err != nil || events != chunks+1 {
				t.Fatalf("got %d of %d events, then %v", events, chunks+1, err)
			}
		})
	}
}
