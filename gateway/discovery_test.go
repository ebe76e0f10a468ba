package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

// TestDiscoveryRoute: a route without static nodes takes its nodes from a
// real Resource instance; a node that reports draining stops receiving
// requests.
func TestDiscoveryRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "tok", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Serve(rctx, ln) }()
	defer func() { rcancel(); <-rdone }()
	resAddr := ln.Addr().String()

	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	seq := uint64(0)
	beat := func(id, addr string, st discovery.State) {
		seq++
		hb := discovery.Heartbeat{ID: id, App: "llama", Addresses: map[string]string{"http": addr}, Capacity: 1, State: st,
			Incarnation: 1, Seq: seq, Load: discovery.Load{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(2), SampledAt: time.Now()}}
		body, _ := json.Marshal(hb)
		req, _ := http.NewRequest("POST", "http://"+resAddr+"/v1/heartbeat", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/json")
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("heartbeat: %d %s", resp.StatusCode, msg)
		}
	}
	beat("a", hostOf(a), discovery.StateReady)
	beat("b", hostOf(b), discovery.StateReady)

	cfg := testConfig(RouteConfig{Name: "llama", Match: MatchConfig{Models: []string{"llama"}}})
	cfg.Discovery = &DiscoveryConfig{Servers: []string{resAddr}, Token: "tok"}
	cfg.WeightPeriod = 200 * time.Millisecond
	gw := startGateway(t, cfg)
	c := testClient()
	nodesSeen := func(n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"llama"}`)
			seen[resp.Header.Get("X-Node")+"/"+http.StatusText(resp.StatusCode)]++
		}
		return seen
	}
	waitFor(t, 10*time.Second, "both discovered nodes to serve", func() bool {
		s := nodesSeen(10)
		return s["a/OK"] > 0 && s["b/OK"] > 0
	})
	beat("a", hostOf(a), discovery.StateDraining)
	waitFor(t, 10*time.Second, "the draining node to leave the rotation", func() bool {
		s := nodesSeen(10)
		return s["b/OK"] == 10
	})
	resp, err := c.Get("http://" + gw.admin + "/admin/routes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`"source": "resource"`)) {
		t.Errorf("/admin/routes: %s", body)
	}
	resp, _ = c.Get("http://" + gw.admin + "/admin/nodes")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`"last_heartbeat_age_seconds": 0`)) {
		t.Errorf("/admin/nodes lacks heartbeat ages: %s", body)
	}
}

// TestDiscoveryOverMTLS: the Resource tier serves mTLS; the discovery
// block's ca_file, cert_file and key_file make the gateway's client speak
// it, and its metrics (switchyard_discovery_*) are exported with the
// gateway's.
func TestDiscoveryOverMTLS(t *testing.T) {
	ca := newTestCA(t)
	srvTLS := ca.serverTLS("resource")
	srvTLS.ClientAuth = tls.RequireAndVerifyClientCert
	srvTLS.ClientCAs = ca.pool()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "tok", TLS: srvTLS, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Serve(rctx, ln) }()
	defer func() { rcancel(); <-rdone }()
	resAddr := ln.Addr().String()

	// A node's heartbeat, over mTLS too.
	agentCert, agentKey := ca.issue("agent", false)
	pair, err := tls.X509KeyPair(agentCert, agentKey)
	if err != nil {
		t.Fatal(err)
	}
	agent := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.pool(), Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}
	a := backend(t, "a", nil)
	hb := discovery.Heartbeat{ID: "a", App: "llama", Addresses: map[string]string{"http": hostOf(a)}, Capacity: 1,
		State: discovery.StateReady, Incarnation: 1, Seq: 1}
	body, _ := json.Marshal(hb)
	req, _ := http.NewRequest("POST", "https://"+resAddr+"/v1/heartbeat", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := agent.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, msg)
	}

	certFile, keyFile := ca.writePair("gateway", "gateway", false)
	cfg := testConfig(RouteConfig{Name: "llama", Match: MatchConfig{Models: []string{"llama"}}})
	cfg.Discovery = &DiscoveryConfig{Servers: []string{resAddr}, Token: "tok", CAFile: ca.caFile(), CertFile: certFile, KeyFile: keyFile}
	gw := startGateway(t, cfg)
	c := testClient()
	waitFor(t, 10*time.Second, "the node discovered over mTLS", func() bool {
		resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"llama"}`)
		return resp.StatusCode == 200 && resp.Header.Get("X-Node") == "a"
	})
	if ar := adminRoutes(t, gw)["llama"]; ar.Source != "resource" || ar.Stale {
		t.Fatalf("/admin/routes: %+v", ar)
	}
	if m := scrape(t, gw); !strings.Contains(m, "switchyard_discovery_nodes") || !strings.Contains(m, `switchyard_gateway_route_stale{route="llama",source="resource"} 0`) {
		t.Errorf("metrics lack the discovery client's or the route's staleness:\n%s", grepLines(m, "discovery", "stale"))
	}

	// Without the client certificate the tier refuses the gateway: the
	// configuration is valid, the view never arrives and is shown stale.
	cfg2 := testConfig(RouteConfig{Name: "llama", Match: MatchConfig{Models: []string{"llama"}}})
	cfg2.Discovery = &DiscoveryConfig{Servers: []string{resAddr}, Token: "tok", CAFile: ca.caFile()}
	gw2 := startGateway(t, cfg2)
	waitFor(t, 10*time.Second, "the refused client shown stale", func() bool { return adminRoutes(t, gw2)["llama"].Stale })
	if resp, _ := post(t, c, gw2.url("/v1/completions"), `{"model":"llama"}`); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("route without a view: %d, want 503", resp.StatusCode)
	}
}
