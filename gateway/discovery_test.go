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
// real Resource instance; a node whose engine is asleep leaves the rotation
// until it is ready again; a node that reports draining stops receiving
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
	readiness := map[string]discovery.Readiness{}
	beat := func(id, addr string, st discovery.State) {
		seq++
		hb := discovery.Heartbeat{ID: id, App: "llama", Addresses: map[string]string{"http": addr}, Capacity: 1, State: st,
			Incarnation: 1, Seq: seq, Load: discovery.Load{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(2), Readiness: readiness[id], SampledAt: time.Now()}}
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
	state := func(id string) string {
		var v struct {
			Nodes []struct{ ID, State string } `json:"nodes"`
		}
		getAdmin(t, gw, "/admin/nodes", &v)
		for _, n := range v.Nodes {
			if n.ID == id {
				return n.State
			}
		}
		return ""
	}
	readiness["a"] = discovery.ReadinessAsleep
	beat("a", hostOf(a), discovery.StateReady)
	waitFor(t, 10*time.Second, "the asleep node to leave the rotation", func() bool {
		return nodesSeen(10)["b/OK"] == 10
	})
	if s := state("a"); s != "asleep" {
		t.Errorf("node a with its engine asleep: state %q", s)
	}
	readiness["a"] = discovery.ReadinessReady
	beat("a", hostOf(a), discovery.StateReady)
	waitFor(t, 10*time.Second, "the woken node to serve again", func() bool {
		return nodesSeen(10)["a/OK"] > 0
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
	var nodes struct {
		Nodes []struct {
			ID               string  `json:"id"`
			LastHeartbeatAge *string `json:"last_heartbeat_age"`
			Load             *struct {
				Utilisation *float64 `json:"utilisation"`
				Waiting     *float64 `json:"waiting"`
			} `json:"load"`
		} `json:"nodes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&nodes)
	resp.Body.Close()
	if err != nil || len(nodes.Nodes) != 2 {
		t.Fatalf("/admin/nodes: %v %+v", err, nodes)
	}
	for _, n := range nodes.Nodes {
		if n.LastHeartbeatAge == nil {
			t.Errorf("/admin/nodes: node %s lacks its heartbeat age", n.ID)
			continue
		}
		// A duration string ("1.312s") no older than the test.
		if age, err := time.ParseDuration(*n.LastHeartbeatAge); err != nil || age < 0 || age > time.Minute {
			t.Errorf("/admin/nodes: node %s heartbeat age %q (%v)", n.ID, *n.LastHeartbeatAge, err)
		}
		// The engine load the heartbeats carried; what they did not say
		// is null.
		if n.Load == nil || n.Load.Utilisation == nil || *n.Load.Utilisation != 0.5 || n.Load.Waiting != nil {
			t.Errorf("/admin/nodes: node %s load %+v, want utilisation 0.5 and waiting unknown", n.ID, n.Load)
		}
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

// TestReadyWithEmptyRoute (issue 15): a route whose source has no node
// does not take the gateway out of its Service: /readyz stays 200 and
// names the route, /admin/routes says that route is not serving, its
// requests get 503, and the other route serves.
func TestReadyWithEmptyRoute(t *testing.T) {
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

	be := backend(t, "b", nil)
	cfg := testConfig(staticRoute("a", be.URL), RouteConfig{Name: "ghost", Match: MatchConfig{Models: []string{"ghost"}}})
	cfg.Discovery = &DiscoveryConfig{Servers: []string{ln.Addr().String()}, Token: "tok"}
	gw := startGateway(t, cfg)
	c := testClient()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get("http://" + gw.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var ready struct {
		Ready bool     `json:"ready"`
		Empty []string `json:"routes_without_nodes"`
	}
	code, body := get("/readyz")
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || !ready.Ready || len(ready.Empty) != 1 || ready.Empty[0] != "ghost" {
		t.Fatalf("/readyz: %d %s (%v)", code, body, err)
	}
	var doc struct {
		Routes []struct {
			Name    string `json:"name"`
			Serving bool   `json:"serving"`
		} `json:"routes"`
	}
	code, body = get("/admin/routes")
	routes := &doc.Routes
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != 200 {
		t.Fatalf("/admin/routes: %d %s (%v)", code, body, err)
	}
	serving := map[string]bool{}
	for _, r := range *routes {
		serving[r.Name] = r.Serving
	}
	if len(serving) != 2 || !serving["a"] || serving["ghost"] {
		t.Errorf("/admin/routes serving: %v, want a yes, ghost no", serving)
	}
	if resp, b := post(t, c, gw.url("/v1/completions"), `{"model":"ghost"}`); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ghost: %d %s, want 503", resp.StatusCode, b)
	}
	if resp, b := post(t, c, gw.url("/v1/completions"), `{"model":"a"}`); resp.StatusCode != http.StatusOK {
		t.Errorf("a: %d %s", resp.StatusCode, b)
	}
}
