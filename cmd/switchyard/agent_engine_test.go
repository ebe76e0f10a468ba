package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// mindieStandIn is an HTTPS server standing in for MindIE's management
// listener: live and ready probes and /metrics (the MindIE-Motor API
// documentation sample, busy KV cache), with httptest's self-signed
// certificate, whose PEM it writes to a file.
func mindieStandIn(t *testing.T) (srv *httptest.Server, caFile string) {
	t.Helper()
	metrics, err := os.ReadFile("../../engines/testdata/fixtures/ascend/mindie-motor-api-doc-metrics-llama3-8b.prom")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /v2/health/ready", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(metrics)
	})
	srv = httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusting client's handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "mindie-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// runAgentInProcess runs `switchyard agent` with args until the test ends
// and returns its log (JSON lines).
func runAgentInProcess(t *testing.T, ctx context.Context, args ...string) *lockedText {
	t.Helper()
	actx, stop := context.WithCancel(ctx)
	logs := &lockedText{}
	done := make(chan error, 1)
	go func() {
		done <- runAgentRun(actx, append(args, "--control", "", "--drain-timeout", "1s", "--log-format", "json"), logs, logs)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent %v: %v", args, err)
		}
	})
	return logs
}

// nodeLoad returns node id's load in l, if listed.
func nodeLoad(l discovery.OnlineList, id string) (discovery.Load, bool) {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n.Load, true
		}
	}
	return discovery.Load{}, false
}

// TestAgentMindIEOverTLS (issue 13): MindIE serves its probes and metrics
// over HTTPS with a self-signed certificate. With --engine-ca the agent
// trusts it, reads readiness and load from the stand-in, and the node is
// listed ready with MindIE's KV cache full; without it the same engine is
// not ready and its load unknown (the certificate is not trusted).
func TestAgentMindIEOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, ca := mindieStandIn(t)
	servers, lists, waiters := procTier(t)
	common := []string{"--servers", strings.Join(servers, ","), "--token", procToken, "--app", "llama",
		"--addr", "http=127.0.0.1:1025", "--engine", "mindie", "--load", "probe", "--period", "500ms",
		"--engine-url", srv.URL, "--metrics-url", srv.URL + "/metrics"}
	l1 := runAgentInProcess(t, ctx, append([]string{"--id", "trusted", "--engine-ca", ca}, common...)...)
	l2 := runAgentInProcess(t, ctx, append([]string{"--id", "untrusted"}, common...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("list %+v\nlogs trusted:\n%s\nuntrusted:\n%s", lists[0](), l1, l2)
		}
	})

	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	waitBoth(wctx, t, lists, waiters, func(l discovery.OnlineList) bool {
		tr, ok1 := nodeLoad(l, "trusted")
		un, ok2 := nodeLoad(l, "untrusted")
		return ok1 && ok2 && tr.Readiness == discovery.ReadinessReady && un.Readiness == discovery.ReadinessNotReady
	})
	tr, _ := nodeLoad(lists[0](), "trusted")
	if tr.KVCacheUsage != discovery.Known(1) || tr.Running != discovery.Known(0) || tr.Waiting != discovery.Known(0) {
		t.Errorf("trusted MindIE: load %+v, want KV 1, running 0, waiting 0 (the fixture)", tr)
	}
	un, _ := nodeLoad(lists[0](), "untrusted")
	if un.KVCacheUsage.IsKnown() || un.Running.IsKnown() {
		t.Errorf("untrusted MindIE: load %+v, want unknown (its certificate is not trusted)", un)
	}
}

// TestAgentMindIEDefaults: with --engine mindie and --load probe, and no
// --engine-url or --metrics-url, the agent probes MindIE's management
// listener (https on 127.0.0.2, port 1026; metrics on 1027), not the
// inference address of --addr.
func TestAgentMindIEDefaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers, _, _ := procTier(t)
	logs := runAgentInProcess(t, ctx, "--servers", strings.Join(servers, ","), "--token", procToken, "--id", "m", "--app", "llama",
		"--addr", "http=10.0.0.5:1025", "--engine", "mindie", "--load", "probe")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Health, Metrics string }
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "agent: probing the engine" {
				continue
			}
			if line.Health != "https://127.0.0.2:1026" || line.Metrics != "https://127.0.0.2:1027/metrics" {
				t.Fatalf("MindIE probed at health %q metrics %q, want https://127.0.0.2:1026 and https://127.0.0.2:1027/metrics", line.Health, line.Metrics)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no probe log line: %s", logs)
		case <-tick.C:
		}
	}
}

// TestEngineCABadFile: a --engine-ca without a certificate is refused,
// naming the flag.
func TestEngineCABadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, _, err := engineClients(f); err == nil || !strings.Contains(err.Error(), "--engine-ca") {
			t.Errorf("engineClients(%s): %v, want an error naming --engine-ca", f, err)
		}
	}
}
