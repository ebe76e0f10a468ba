package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
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
