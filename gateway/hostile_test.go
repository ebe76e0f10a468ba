package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawExchange writes raw bytes to the gateway and returns what came back
// until the connection closed or the deadline passed.
func rawExchange(t *testing.T, addr string, payload []byte, wait time.Duration) (string, bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, c)
	closed := err == nil // EOF: the gateway closed the connection
	return out.String(), closed
}

func statusLine(resp string) string {
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

// hostileGateway is a gateway with small limits and a backend that counts
// the requests it sees.
func hostileGateway(t *testing.T) (*testGateway, *atomic.Int64, *atomic.Bool) {
	var seen atomic.Int64
	var smuggled atomic.Bool
	be := backend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if strings.Contains(r.URL.Path, "smuggled") {
			smuggled.Store(true)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "{}")
	})
	cfg := testConfig(RouteConfig{Name: "all", Match: MatchConfig{Models: []string{"*"}}, Nodes: []NodeConfig{{HTTP: hostOf(be)}}})
	cfg.Limits.MaxHeaderBytes = 16 << 10
	cfg.Limits.MaxBodyBytes = 1 << 10
	cfg.Limits.ReadTimeout = 500 * time.Millisecond
	return startGateway(t, cfg), &seen, &smuggled
}

func TestHostileInput(t *testing.T) {
	base := runtime.NumGoroutine()
	gw, seen, smuggled := hostileGateway(t)
	okRequest := func(t *testing.T) {
		t.Helper()
		resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"x"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("a well-behaved client got %d %s", resp.StatusCode, body)
		}
	}
	t.Run("malformed request lines", func(t *testing.T) {
		for _, p := range []string{
			"GARBAGE\r\n\r\n",
			"GET\r\n\r\n",
			"GET / HTTP/9.9\x00\r\n\r\n",
			"\x00\x01\x02\x03 / HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET / HTTP/1.1\r\nHost x\r\nBroken\r\n\r\n",
		} {
			resp, closed := rawExchange(t, gw.addr, []byte(p), 3*time.Second)
			if !closed || (resp != "" && !strings.HasPrefix(statusLine(resp), "HTTP/1.1 4")) {
				t.Errorf("%q: got %q (closed %v); want a 4xx and a closed connection", p, statusLine(resp), closed)
			}
		}
		okRequest(t)
	})
	t.Run("content-length and transfer-encoding", func(t *testing.T) {
		before := seen.Load()
		p := "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
		resp, closed := rawExchange(t, gw.addr, []byte(p), 3*time.Second)
		if smuggled.Load() {
			t.Fatalf("a smuggled request reached the node; response %q", resp)
		}
		sl := statusLine(resp)
		if !strings.HasPrefix(sl, "HTTP/1.1 400") && !closed {
			t.Fatalf("got %q, closed %v: want 400 or a closed connection", sl, closed)
		}
		t.Logf("conflicting framing: %q (closed %v, node saw %d)", sl, closed, seen.Load()-before)
		okRequest(t)
	})
	t.Run("header over limit", func(t *testing.T) {
		p := "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"
		resp, _ := rawExchange(t, gw.addr, []byte(p), 3*time.Second)
		if sl := statusLine(resp); !strings.HasPrefix(sl, "HTTP/1.1 431") {
			t.Fatalf("got %q, want 431", sl)
		}
		okRequest(t)
	})
	t.Run("body over limit", func(t *testing.T) {
		resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"x","p":"`+strings.Repeat("a", 4<<10)+`"}`)
		if resp.StatusCode != 413 {
			t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
		}
		decodeError(t, body)
		okRequest(t)
	})
	t.Run("absurdly long path", func(t *testing.T) {
		p := "GET /" + strings.Repeat("p", 10<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"
		resp, _ := rawExchange(t, gw.addr, []byte(p), 3*time.Second)
		if sl := statusLine(resp); !strings.HasPrefix(sl, "HTTP/1.1 414") {
			t.Fatalf("10 KiB path: got %q, want 414", sl)
		}
		p = "GET /" + strings.Repeat("p", 64<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"
		resp, closed := rawExchange(t, gw.addr, []byte(p), 3*time.Second)
		if sl := statusLine(resp); !strings.HasPrefix(sl, "HTTP/1.1 4") && !closed {
			t.Fatalf("64 KiB path: got %q", sl)
		}
		okRequest(t)
	})
	t.Run("invalid JSON and non-UTF-8 model", func(t *testing.T) {
		for _, body := range []string{`{"model":`, `{"model":"a"}}`, "{\"model\":\"\xc3\x28\"}"} {
			resp, b := post(t, testClient(), gw.url("/v1/chat/completions"), body)
			if resp.StatusCode != 400 {
				t.Fatalf("%q: %d %s", body, resp.StatusCode, b)
			}
		}
	})
	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("tcp", gw.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("POST /v1/completions HTTP/1.1\r\nHost: x\r\n"))
		closedAt := time.Duration(0)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, c) // returns when the gateway closes
			closedAt = time.Since(start)
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
	loop:
		for i := 0; i < 60; i++ {
			select {
			case <-done:
				break loop
			case <-tick.C:
				if _, err := c.Write([]byte("X-A: b\r\n")); err != nil {
					break loop
				}
			}
		}
		<-done
		if closedAt == 0 || closedAt > 5*time.Second {
			t.Fatalf("slow headers kept the connection for %v; read timeout is 500ms", closedAt)
		}
		okRequest(t)
	})
	t.Run("http2 rapid reset", func(t *testing.T) {
		// The gateway may still be reading a round's frames after the
		// client closed: memory is compared once its connection is gone
		// (each okRequest leaves one kept-alive connection open).
		open0, _ := gw.g.front.OpenConnections()
		closed := func(extra int64) {
			waitFor(t, 10*time.Second, "the rapid-reset connection closed", func() bool {
				o, _ := gw.g.front.OpenConnections()
				return o <= open0+extra
			})
		}
		before := seen.Load()
		sent, err := rapidReset(gw.addr, 2000)
		t.Logf("rapid reset: %d HEADERS+RST_STREAM pairs sent (%v); the node saw %d", sent, err, seen.Load()-before)
		if n := seen.Load() - before; n > 100 {
			t.Errorf("%d reset streams were forwarded to the node", n)
		}
		okRequest(t)
		closed(1)
		// A second round on a fresh connection: memory must not grow with it.
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, _ = rapidReset(gw.addr, 2000)
		okRequest(t)
		closed(2)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if grow := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grow > 8<<20 {
			t.Errorf("heap grew by %d bytes over a rapid-reset round", grow)
		}
	})
	gw.stop()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	settleGoroutines(t, base, 8)
}

// rapidReset opens an h2c connection and sends HEADERS then RST_STREAM
// (CANCEL) n times, reading frames meanwhile; it returns how many pairs
// went out before the gateway closed the connection.
func rapidReset(addr string, n int) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	bw := bufio.NewWriter(c)
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		return 0, err
	}
	fr := http2.NewFramer(bw, c)
	if err := fr.WriteSettings(); err != nil {
		return 0, err
	}
	go func() { // drain the server's frames
		rf := http2.NewFramer(io.Discard, c)
		for {
			if _, err := rf.ReadFrame(); err != nil {
				return
			}
		}
	}()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	sent := 0
	for i := 0; i < n; i++ {
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr}, {":path", "/v1/completions"}, {"content-type", "application/json"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			return sent, err
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			return sent, err
		}
		if i%50 == 0 {
			if err := bw.Flush(); err != nil {
				return sent, err
			}
		}
		sent++
	}
	return sent, bw.Flush()
}

// TestExactlyOneResponse: under load with nodes that 5xx, reset and hang
// past the timeout, every request gets exactly one answer.
func TestExactlyOneResponse(t *testing.T) {
	var calls atomic.Int64
	mk := func(kind string) string {
		return backend(t, kind, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			switch kind {
			case "ok":
				_, _ = io.WriteString(w, "{}")
			case "5xx":
				w.WriteHeader(500)
			case "reset":
				hj, _ := w.(http.Hijacker)
				c, _, err := hj.Hijack()
				if err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					c.Close()
				}
			case "hang":
				select {
				case <-r.Context().Done():
				case <-time.After(3 * time.Second):
				}
			}
		}).URL
	}
	cfg := testConfig(staticRoute("m", mk("ok"), mk("5xx"), mk("reset"), mk("hang"), mk("ok")))
	cfg.Routes[0].Timeouts.FirstByte = 150 * time.Millisecond
	cfg.Routes[0].Breaker.Failures = 1000 // keep the bad nodes in rotation
	gw := startGateway(t, cfg)
	const total, workers = 400, 16
	var sent, answered, transportErr atomic.Int64
	statuses := make(map[int]int)
	var mu = make(chan struct{}, 1)
	c := testClient()
	jobs := make(chan int)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for range jobs {
				sent.Add(1)
				req, _ := http.NewRequest("POST", gw.url("/v1/completions"), strings.NewReader(`{"model":"m"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					transportErr.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered.Add(1)
				mu <- struct{}{}
				statuses[resp.StatusCode]++
				<-mu
			}
		}()
	}
	for i := 0; i < total; i++ {
		jobs <- i
	}
	close(jobs)
	for w := 0; w < workers; w++ {
		<-done
	}
	t.Logf("sent %d, answered %d, transport errors %d, statuses %v, node calls %d", sent.Load(), answered.Load(), transportErr.Load(), statuses, calls.Load())
	if sent.Load() != total || answered.Load() != total || transportErr.Load() != 0 {
		t.Fatalf("sent %d, answered %d, transport errors %d", sent.Load(), answered.Load(), transportErr.Load())
	}
	for s := range statuses {
		switch s {
		case 200, 500, 502, 503, 504:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	waitFor(t, 5*time.Second, "in-flight back to 0", func() bool { return gw.g.InFlight() == 0 })
	counted := gw.g.core.Routes().Route("m").Stats().Answered()
	if counted != total {
		t.Errorf("the gateway counted %d answers for %d requests", counted, total)
	}
	_ = fmt.Sprint()
}

// TestPathAllowlist: only a route's inference APIs reach its nodes. Engine
// control paths are refused with 404 in the OpenAI error shape and never
// forwarded; paths are normalised first (and forwarded normalised), so
// dot segments, doubled slashes and escapes cannot sneak past; allow_paths
// widens the list.
func TestPathAllowlist(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := backend(t, "n", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawPath+"|"+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	wide := staticRoute("wide", be.URL)
	wide.AllowPaths = []string{"/v1/load_lora_adapter"}
	gw := startGateway(t, testConfig(staticRoute("m", be.URL), wide))
	c := testClient()
	body := func(model string) string { return `{"model":"` + model + `"}` }
	refused := []struct{ path, code string }{
		{"/sleep", "path_not_allowed"},
		{"/v1/load_lora_adapter", "path_not_allowed"},
		{"/update_weights_from_disk", "path_not_allowed"},
		{"/v2/repository/models/m/load", "path_not_allowed"},
		{"/v1/x/../../sleep", "path_not_allowed"},
		{"/v1/chat/completions/../../sleep", "path_not_allowed"},
		{"/v1/chat%2Fcompletions", "invalid_request"},
		{"/v1/../../etc/passwd", "invalid_request"},
		{"/v1/%00/completions", "invalid_request"},
	}
	for _, tc := range refused {
		req, _ := http.NewRequest("POST", gw.url("/"), strings.NewReader(body("m")))
		req.URL.Opaque = tc.path // sent as written, not cleaned by the client
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("%s was forwarded", tc.path)
			continue
		}
		e := decodeError(t, b)
		want := 404
		if tc.code == "invalid_request" {
			want = 400
		}
		if resp.StatusCode != want || e.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.path, resp.StatusCode, e.Error.Code, want, tc.code)
		}
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("refused requests reached the node: %q", seen)
	}
	mu.Unlock()
	// Allowed, and forwarded normalised.
	for _, p := range []string{"/v1//chat/completions", "/v1/./chat/x/../completions", "/v1/%63hat/completions"} {
		req, _ := http.NewRequest("POST", gw.url("/"), strings.NewReader(body("m")))
		req.URL.Opaque = p
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, b := post(t, c, gw.url("/v1/load_lora_adapter"), body("wide")); resp.StatusCode != 200 {
		t.Errorf("allow_paths: %d %s", resp.StatusCode, b)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"|/v1/chat/completions", "|/v1/chat/completions", "|/v1/chat/completions", "|/v1/load_lora_adapter"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("the node saw %q, want %q", seen, want)
	}
}
