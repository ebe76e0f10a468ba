package health

import (
	"bufio"
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// member is a Member for a node at addr (a real endpoint).
func member(t *testing.T, addr, engine string, noHTTP bool) *Member {
	t.Helper()
	b, err := balancer.NewBuilder(balancer.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := b.Build([]balancer.Node{{ID: "n", Addr: balancer.Address{HTTP: addr, GRPC: addr}}}, time.Now())
	return &Member{Endpoint: tb.Endpoint(0), Ready: true, Engine: engine, NoHTTP: noHTTP}
}

// TestProbe runs the probe against real servers on loopback: only an
// HTTP answer within the timeout is a sign of life, and only a 2xx is
// healthy; a 404 or a peer that is not HTTP/1.x has no health endpoint.
func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/busy", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	web := strings.TrimPrefix(srv.URL, "http://")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	h2 := rawServer(t, func(c net.Conn) { // an h2c-only server's SETTINGS frame, then close
		_, _ = c.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
		c.Close()
	})
	closer := rawServer(t, func(c net.Conn) { // reads the request, answers nothing, closes
		_, _ = http.ReadRequest(bufio.NewReader(c)) // all of it: unread data would make the close a reset
		c.Close()
	})
	for _, tc := range []struct {
		name, addr, path string
		want             outcome
		detail           string
	}{
		{"healthy", web, "/health", probeOK, ""},
		{"404", web, "/nope", probeNone, "404 on /nope"},
		{"503", web, "/busy", probeFailed, "status 503"},
		{"hangs", hangServer(t), "/health", probeFailed, "no answer within 200ms"},
		{"refused", deadAddr, "/health", probeFailed, "connect:"},
		{"not HTTP/1", h2, "/health", probeNone, "other than HTTP/1.x"},
		{"closes", closer, "/health", probeNone, "closed the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := testRoute(tc.addr)
			rc.HealthCheck.Path = tc.path
			r, err := newRules(&rc)
			if err != nil {
				t.Fatal(err)
			}
			tg := r.resolve(member(t, tc.addr, "", false))
			// The timeout is tight only where it is what ends the probe;
			// the others answer, and a loaded machine must not turn
			// their answer into a timeout.
			timeout := 10 * time.Second
			if tc.name == "hangs" {
				timeout = 200 * time.Millisecond
			}
			start := time.Now()
			got, detail := probe(context.Background(), &tg, timeout)
			if got != tc.want || !strings.Contains(detail, tc.detail) {
				t.Fatalf("outcome %d %q, want %d containing %q", got, detail, tc.want, tc.detail)
			}
			if took := time.Since(start); took > timeout+5*time.Second {
				t.Fatalf("the probe took %v: it must be bounded by its timeout (%v)", took, timeout)
			}
		})
	}

	// Cancelling the context ends a probe at once.
	rc := testRoute(web)
	r, _ := newRules(&rc)
	tg := r.resolve(member(t, hangServer(t), "", false))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan outcome, 1)
	go func() { o, _ := probe(ctx, &tg, time.Hour); done <- o }()
	cancel()
	select {
	case o := <-done:
		if o != probeFailed {
			t.Fatalf("cancelled probe: %d", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled probe did not return")
	}
}

// TestProbeHTTPS: an https health endpoint is verified against ca_file;
// without it (system roots) the test server's certificate fails.
func TestProbeHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ca string
		want     outcome
	}{{"ca_file", ca, probeOK}, {"system roots", "", probeFailed}} {
		t.Run(tc.name, func(t *testing.T) {
			rc := testRoute(addr)
			rc.HealthCheck.Scheme, rc.HealthCheck.CAFile = "https", tc.ca
			r, err := newRules(&rc)
			if err != nil {
				t.Fatal(err)
			}
			tg := r.resolve(member(t, addr, "", false))
			if o, d := probe(context.Background(), &tg, 2*time.Second); o != tc.want {
				t.Fatalf("outcome %d (%s), want %d", o, d, tc.want)
			}
		})
	}
	rc := testRoute(addr)
	rc.HealthCheck.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := newRules(&rc); err == nil || !strings.Contains(err.Error(), "health_check.ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
}
