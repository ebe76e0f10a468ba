package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testnode"
)

// testGateway is a gateway serving on loopback for one test.
type testGateway struct {
	g     *Gateway
	addr  string
	admin string
	stop  func()
}

// startGateway serves cfg on 127.0.0.1:0 until the test ends.
func startGateway(t testing.TB, cfg *Config) *testGateway {
	t.Helper()
	g, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, g, cl)
}

// serveOn serves g on the client listener cl (and an admin port) until
// the test ends.
func serveOn(t testing.TB, g *Gateway, cl net.Listener) *testGateway {
	t.Helper()
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, cl, al) }()
	tg := &testGateway{g: g, addr: cl.Addr().String(), admin: al.Addr().String()}
	var once sync.Once
	tg.stop = func() { once.Do(func() { stopOnce(t, cancel, done) }) }
	t.Cleanup(tg.stop)
	return tg
}

// stopOnce cancels a gateway's Serve and waits for it to return.
func stopOnce(t testing.TB, cancel context.CancelFunc, done chan error) {
	cancel()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-timer.C:
		t.Errorf("Serve did not return after cancel")
	}
}

func (tg *testGateway) url(path string) string { return "http://" + tg.addr + path }

// staticRoute is a model-only route over backends.
func staticRoute(model string, backends ...string) RouteConfig {
	rc := RouteConfig{Name: model, Match: MatchConfig{Models: []string{model}}}
	for _, b := range backends {
		n, err := ParseNodeURL(b)
		if err != nil {
			panic(err)
		}
		rc.Nodes = append(rc.Nodes, n)
	}
	return rc
}

func testConfig(routes ...RouteConfig) *Config {
	c := &Config{Routes: routes}
	c.Limits.ShutdownTimeout = 5 * time.Second
	c.Limits.DrainDelay = -1 // stop at once
	c.Limits.ReadTimeout = 5 * time.Second
	for i := range c.Routes {
		c.Routes[i].Breaker.OpenFor = 200 * time.Millisecond
		c.Routes[i].Timeouts.Total = 10 * time.Second
	}
	return c
}

// backend is an httptest server whose handler names it.
func backend(t testing.TB, name string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Node", name)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"node":"`+name+`","path":"`+r.URL.Path+`","bytes":`+itoa(len(body))+`,"rid":"`+r.Header.Get("X-Request-Id")+`"}`)
		}
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// testClient is an HTTP/1.1 client with a timeout.
func testClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

func post(t testing.TB, c *http.Client, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// errorJSON decodes OpenAI's error shape.
type errorJSON struct {
	Error struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func decodeError(t testing.TB, b []byte) errorJSON {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	if e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == "" {
		t.Fatalf("error body %q lacks message/type/code", b)
	}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settleGoroutines waits for the goroutine count to fall back to at most
// base+slack.
func settleGoroutines(t testing.TB, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines did not settle: %d now, %d before\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connNode is a hand-written node: it listens on loopback and serves each
// connection with handle on a goroutine of its own, the connection's
// deadline set to d. When the test ends it closes the listener and every
// connection, and waits for the handlers.
func connNode(t *testing.T, d time.Duration, handle func(c net.Conn)) string {
	t.Helper()
	return testnode.Serve(t, "tcp", func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d))
		handle(c)
	})
}

// headerLog keeps the headers of every request a test node receives; safe
// for the node's handlers and the test to use at once.
type headerLog struct {
	mu   sync.Mutex
	seen []http.Header // guarded by mu
}

func (l *headerLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r.Header.Clone())
}

// all returns the headers received so far, in order.
func (l *headerLog) all() []http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}
