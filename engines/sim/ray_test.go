package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/rayserve"
)

// rayFast is a replica template with short timings.
var rayFast = Config{Model: "m", Override: Profile{Prefill: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 2}}

func startRay(t *testing.T, cfg RayConfig) *RayCluster {
	t.Helper()
	c, err := StartRay(testCtx(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// threeNodes: a head and two workers; app llm (/llm) has two replicas on
// w1 and one on w2, app chat (/) one on the head.
func threeNodes() RayConfig {
	return RayConfig{
		Nodes: []RayNodeConfig{{ID: "head"}, {ID: "w1"}, {ID: "w2"}},
		Apps: []RayAppConfig{
			{Name: "llm", RoutePrefix: "/llm", NumGPUs: 1, AcceleratorType: "H100", Replica: rayFast,
				Replicas: []RayPlacement{{Node: "w1", Count: 2}, {Node: "w2"}}},
			{Name: "chat", RoutePrefix: "/", Replica: rayFast, Replicas: []RayPlacement{{Node: "head"}}},
		},
	}
}

func dashboard(t *testing.T, c *RayCluster) rayserve.Cluster {
	t.Helper()
	cl, err := rayserve.Discover(testCtx(t, 5*time.Second), nil, c.DashboardURL())
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestRayDashboardShape: the stand-in's /api/serve/applications/ parses
// with our Ray Serve parser into the configured cluster.
func TestRayDashboardShape(t *testing.T) {
	c := startRay(t, threeNodes())
	cl := dashboard(t, c)
	if cl.ProxyLocation != "EveryNode" || cl.HTTPPort != c.HTTPPort() || cl.ControllerNodeIP != "127.0.0.1" || len(cl.Proxies) != 3 {
		t.Fatalf("cluster %+v", cl)
	}
	for _, p := range cl.Proxies {
		if !p.Healthy() || p.HTTPAddr != c.ProxyAddr(p.NodeID) {
			t.Errorf("proxy %+v", p)
		}
	}
	if len(cl.Apps) != 2 || cl.Apps[1].Name != "llm" || cl.Apps[1].RoutePrefix != "/llm" || cl.Apps[1].Status != "RUNNING" {
		t.Fatalf("apps %+v", cl.Apps)
	}
	d := cl.Apps[1].Deployments[0]
	if d.Name != "LLMServer" || d.NumGPUs != 1 || d.NumReplicas != 3 || len(d.Replicas) != 3 || d.MaxOngoingRequests != 5 {
		t.Errorf("deployment %+v", d)
	}
	routes := cl.Routes()
	got := map[string]int{}
	for _, r := range routes {
		got[r.App+"@"+r.NodeID] = r.Replicas
	}
	if want := map[string]int{"chat@head": 1, "llm@w1": 2, "llm@w2": 1}; !mapsEqual(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ask sends a completion through a proxy and returns the status and the
// replica that answered.
func ask(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, b := post(t, testCtx(t, 10*time.Second), "http://"+addr+path, `{"model":"m","prompt":"hi"}`)
	if resp.StatusCode == 200 && !strings.Contains(string(b), `"text_completion"`) {
		t.Errorf("answer %s", b)
	}
	return resp.StatusCode, resp.Header.Get(NodeHeader)
}

// TestRayProxyRouting: proxies route by longest route prefix (stripping
// it), prefer replicas on their own node, and fall back to any RUNNING
// replica.
func TestRayProxyRouting(t *testing.T) {
	c := startRay(t, threeNodes())
	onNode := func(node string) []string {
		var ids []string
		for _, r := range c.Replicas("") {
			if r.Node == node {
				ids = append(ids, r.ID)
			}
		}
		return ids
	}
	for i := 0; i < 4; i++ {
		st, rep := ask(t, c.ProxyAddr("w1"), "/llm/v1/completions")
		if st != 200 || !slices.Contains(onNode("w1"), rep) {
			t.Errorf("w1 proxy: %d from %q, want a w1 replica %v", st, rep, onNode("w1"))
		}
	}
	if st, rep := ask(t, c.ProxyAddr("w2"), "/llm/v1/completions"); st != 200 || !slices.Contains(onNode("w2"), rep) {
		t.Errorf("w2 proxy: %d from %q", st, rep)
	}
	// The head has no llm replica: any will do.
	if st, rep := ask(t, c.ProxyAddr("head"), "/llm/v1/completions"); st != 200 || !strings.HasPrefix(rep, "llm#") {
		t.Errorf("head proxy for llm: %d from %q", st, rep)
	}
	// "/" catches the rest; "/llmx" is not under "/llm".
	if st, rep := ask(t, c.ProxyAddr("w1"), "/llmx/../v1/completions"); st != 200 || !strings.HasPrefix(rep, "chat#") {
		t.Errorf("/ route: %d from %q", st, rep)
	}
	if st, rep := ask(t, c.ProxyAddr("w1"), "/v1/completions"); st != 200 || !strings.HasPrefix(rep, "chat#") {
		t.Errorf("/ route: %d from %q", st, rep)
	}
	// Streams pass through whole, many times over (a proxy that let
	// net/http close the request body under the transport cut them).
	ctx := testCtx(t, 20*time.Second)
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.ProxyAddr("head")+"/llm/v1/chat/completions",
			strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Fatalf("stream %d: %v after %q", i, err, b)
		}
	}
	if st, b := get(t, ctx, "http://"+c.ProxyAddr("w2")+"/-/healthz"); st != 200 || string(b) != "success" {
		t.Errorf("healthz %d %s", st, b)
	}
	_, b := get(t, ctx, "http://"+c.ProxyAddr("w2")+"/-/routes")
	var routes map[string]string
	if err := json.Unmarshal(b, &routes); err != nil || routes["/llm"] != "llm" || routes["/"] != "chat" {
		t.Errorf("routes %s", b)
	}
}

// TestRayControl: replica states, removal, proxy status and stop, and an
// unreachable dashboard, as the dashboard and the proxies show them.
func TestRayControl(t *testing.T) {
	c := startRay(t, threeNodes())
	ctx := testCtx(t, 20*time.Second)
	w2 := c.Replicas("llm")[2]
	if w2.Node != "w2" {
		t.Fatalf("replicas %+v", c.Replicas("llm"))
	}
	if err := c.SetReplicaState(w2.ID, RayStarting); err != nil {
		t.Fatal(err)
	}
	if st, rep := ask(t, c.ProxyAddr("w2"), "/llm/v1/completions"); st != 200 || rep == w2.ID {
		t.Errorf("STARTING replica got a request (%d from %q)", st, rep)
	}
	routes := dashboard(t, c).Routes()
	for _, r := range routes {
		if r.NodeID == "w2" {
			t.Errorf("w2 still routed while its replica is STARTING: %+v", r)
		}
	}
	if err := c.SetReplicaState(w2.ID, "BOGUS"); err == nil {
		t.Error("bogus state accepted")
	}
	if err := c.RemoveReplica(ctx, w2.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Replicas("llm")); n != 2 {
		t.Errorf("%d llm replicas after removal", n)
	}

	if err := c.SetProxyStatus("w1", RayDraining); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(t, ctx, "http://"+c.ProxyAddr("w1")+"/-/healthz"); st != 503 {
		t.Errorf("draining healthz %d", st)
	}
	if err := c.StopProxy("w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + c.ProxyAddr("w1") + "/-/healthz"); err == nil {
		t.Error("stopped proxy answers")
	}
	for _, p := range dashboard(t, c).Proxies {
		if p.NodeID == "w1" && p.Status != RayUnhealthy {
			t.Errorf("stopped proxy reported %s", p.Status)
		}
	}
	if err := c.StartProxy(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(t, ctx, "http://"+c.ProxyAddr("w1")+"/-/healthz"); st != 200 {
		t.Errorf("restarted proxy healthz %d", st)
	}

	c.SetDashboardStatus(503)
	if _, err := rayserve.Discover(ctx, nil, c.DashboardURL()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("dashboard 503: %v", err)
	}
	c.SetDashboardStatus(0)
	if err := c.SetDashboardDown(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := rayserve.Discover(ctx, &http.Client{Transport: &http.Transport{}}, c.DashboardURL()); err == nil {
		t.Error("dashboard down still answers")
	}
	if err := c.SetDashboardDown(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(dashboard(t, c).Apps) != 2 {
		t.Error("dashboard back up without apps")
	}
}

// TestRayQueueAndMetrics: beyond max_ongoing_requests per replica a
// request queues in the proxy; the node's metrics endpoint shows
// ray_serve_replica_processing_queries and ray_serve_deployment_queued_queries.
func TestRayQueueAndMetrics(t *testing.T) {
	slow := Config{Model: "m", Override: Profile{Prefill: time.Hour, Slots: 4}}
	c := startRay(t, RayConfig{Nodes: []RayNodeConfig{{ID: "n"}},
		Apps: []RayAppConfig{{Name: "llm", MaxOngoingRequests: 1, Replica: slow, Replicas: []RayPlacement{{Node: "n"}}}}})
	ctx, cancel := context.WithCancel(testCtx(t, 10*time.Second))
	defer cancel()
	for i := 0; i < 2; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.ProxyAddr("n")+"/llm/v1/completions", strings.NewReader(`{"prompt":"x"}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	metricsURL := "http://" + net.JoinHostPort(c.NodeIP("n"), strconv.Itoa(c.MetricsPort())) + "/metrics"
	waitFor(t, "one processing, one queued", func() bool {
		_, b := get(t, testCtx(t, 5*time.Second), metricsURL)
		m, err := engines.ParseMetrics(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		sum := func(name string) (s float64) {
			for _, x := range m.Samples(name) {
				s += x.Value
			}
			return s
		}
		return sum("ray_serve_replica_processing_queries") == 1 && sum("ray_serve_deployment_queued_queries") == 1
	})
	if r := c.Replicas("llm")[0]; r.Ongoing != 1 {
		t.Errorf("replica ongoing %d", r.Ongoing)
	}
}

// TestRayHeadOnly: one proxy, on the head; it reaches every replica.
func TestRayHeadOnly(t *testing.T) {
	cfg := threeNodes()
	cfg.ProxyLocation = "HeadOnly"
	c := startRay(t, cfg)
	cl := dashboard(t, c)
	if cl.ProxyLocation != "HeadOnly" || len(cl.Proxies) != 1 || cl.Proxies[0].NodeID != "head" {
		t.Fatalf("proxies %+v", cl.Proxies)
	}
	if st, rep := ask(t, c.ProxyAddr("head"), "/llm/v1/completions"); st != 200 || !strings.HasPrefix(rep, "llm#") {
		t.Errorf("head proxy: %d %q", st, rep)
	}
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + c.ProxyAddr("w1") + "/-/healthz"); err == nil {
		t.Error("a worker has a proxy with HeadOnly")
	}
}

// TestRayToken: with a token the dashboard wants "Authorization: Bearer".
func TestRayToken(t *testing.T) {
	cfg := threeNodes()
	cfg.Token = "s3cret"
	c := startRay(t, cfg)
	ctx := testCtx(t, 5*time.Second)
	if st, _ := get(t, ctx, c.DashboardURL()+RayApplicationsPath); st != 401 {
		t.Errorf("no token: %d", st)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", c.DashboardURL()+RayApplicationsPath, nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with token: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestRayFleetYAML: a fleet file with only a ray section starts the
// cluster; replicas inherit the fleet defaults; the streaming path works
// through a proxy.
func TestRayFleetYAML(t *testing.T) {
	fc, err := ParseFleet([]byte(`
defaults:
  model: llama
  override: {prefill: 1ms, per_token: 1ms, max_tokens: 3}
ray:
  proxy_location: EveryNode
  nodes: [{id: head}, {id: gpu, ip: 127.0.0.9}]
  apps:
    - name: llm
      route_prefix: /llm
      replicas: [{node: gpu, count: 2}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	f, err := StartFleet(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := f.Ray()
	if c == nil || len(c.Replicas("llm")) != 2 || c.NodeIP("gpu") != "127.0.0.9" {
		t.Fatalf("ray cluster %+v", c)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.ProxyAddr("head")+"/llm/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data := readSSE(t, bufio.NewReader(resp.Body))
	if resp.StatusCode != 200 || resp.Header.Get(RayProxyHeader) != "head" || data[len(data)-1] != "[DONE]" {
		t.Errorf("stream via proxy: %d %q", resp.StatusCode, data)
	}
	for _, bad := range []string{
		"ray: {nodes: []}\n",
		"ray: {proxy_location: Somewhere, nodes: [{id: a}]}\n",
		"ray: {nodes: [{id: a}], apps: [{name: x, route_prefix: /x/}]}\n",
		"ray: {nodes: [{id: a}], apps: [{name: x, replicas: [{node: b}]}]}\n",
		"ray: {nodes: [{id: a, ip: nope}]}\n",
	} {
		fc, err := ParseFleet([]byte(bad))
		if err == nil {
			var f *Fleet
			if f, err = StartFleet(ctx, fc); err == nil {
				f.Close()
			}
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
