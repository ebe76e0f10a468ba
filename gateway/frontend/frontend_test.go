package frontend

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
)

// tcpPair returns both ends of a loopback TCP connection; the test's end
// closes them.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// serveFrontend runs a frontend over a real core and one static route to
// node until the test ends.
func serveFrontend(t *testing.T, node string, logs io.Writer) (addr string, core *forward.Core) {
	t.Helper()
	fe := startFrontend(t, node, logs)
	return fe.addr, fe.core
}

// frontend is a frontend served by startFrontend.
type frontend struct {
	addr string
	core *forward.Core
	s    *Server
	ln   net.Listener
}

// startFrontend is serveFrontend with the server at hand (Shutdown runs
// again at the end of the test; a second call returns at once).
func startFrontend(t *testing.T, node string, logs io.Writer) frontend {
	t.Helper()
	return startFrontendWith(t, node, logs, nil)
}

// startFrontendWith is startFrontend with edit applied to the config
// before its defaults.
func startFrontendWith(t *testing.T, node string, logs io.Writer, edit func(*config.Config)) frontend {
	t.Helper()
	cfg := &config.Config{Routes: []config.RouteConfig{{Name: "m", Match: config.MatchConfig{Models: []string{"m"}}, Nodes: []config.NodeConfig{{HTTP: node}}}}}
	if edit != nil {
		edit(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	core := forward.New(metrics, nil, log)
	st, err := route.NewSet(cfg, nil, route.Deps{Metrics: metrics, Log: log, Sender: core.Sender()})
	if err != nil {
		t.Fatal(err)
	}
	core.SetRoutes(st)
	s, err := New(core, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	watchdog := make(chan struct{})
	go func() {
		core.Run(ctx)
		close(watchdog)
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		s.Shutdown(sctx, ln)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		<-watchdog
		st.CloseExtras()
	})
	return frontend{addr: ln.Addr().String(), core: core, s: s, ln: ln}
}

// TestHandlerPanicRecovered: a panic while serving a request (HTTP/1.1 or
// HTTP/2) is answered 500 in the OpenAI error shape, logged with its
// stack, and the gateway keeps serving; nothing stays counted in flight.
func TestHandlerPanicRecovered(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{}`)
	}))
	defer node.Close()
	var logs testlog.Buffer
	addr, core := serveFrontend(t, strings.TrimPrefix(node.URL, "http://"), &logs)
	testHook = func(arg []byte) {
		if string(arg) == "yes" {
			panic("boom")
		}
	}
	defer func() { testHook = nil }()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	for _, c := range []*http.Client{
		{Timeout: 5 * time.Second},
		{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &p}},
	} {
		for _, panicking := range []string{"yes", "no"} {
			req, _ := http.NewRequest("POST", "http://"+addr+"/v1/completions", strings.NewReader(`{"model":"m"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Test-Panic", panicking)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := 200
			if panicking == "yes" {
				want = 500
			}
			if resp.StatusCode != want || want == 500 && !strings.Contains(string(b), `"code":"internal_error"`) {
				t.Fatalf("proto %d, panic %s: %d %s", resp.ProtoMajor, panicking, resp.StatusCode, b)
			}
		}
	}
	if !strings.Contains(logs.String(), "panic=boom") || !strings.Contains(logs.String(), "stack=") {
		t.Errorf("the panic was not logged with its stack: %s", logs.String())
	}
	if n := core.InFlight(); n != 0 {
		t.Errorf("in flight after the panics: %d", n)
	}
}
