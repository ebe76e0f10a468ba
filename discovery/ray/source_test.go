package ray

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var replica = sim.Config{Model: "m", Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 2}}

// cluster: a head and two GPU workers; app llm (/llm, 1 H100 per replica)
// has two replicas on w1 and one on w2, app chat (/) one on the head.
func cluster(t *testing.T, mutate func(*sim.RayConfig)) *sim.RayCluster {
	t.Helper()
	cfg := sim.RayConfig{
		Nodes: []sim.RayNodeConfig{{ID: "head"}, {ID: "w1"}, {ID: "w2"}},
		Apps: []sim.RayAppConfig{
			{Name: "llm", RoutePrefix: "/llm", NumGPUs: 1, AcceleratorType: "H100", Replica: replica,
				Replicas: []sim.RayPlacement{{Node: "w1", Count: 2}, {Node: "w2"}}},
			{Name: "chat", RoutePrefix: "/", Replica: replica, Replicas: []sim.RayPlacement{{Node: "head"}}},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := sim.StartRay(testCtx(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// recorder collects a source's callbacks.
type recorder struct {
	mu      sync.Mutex
	updates []update
	apps    [][]Application
}

type update struct {
	app  string
	list discovery.OnlineList
}

func (r *recorder) onUpdate(app string, l discovery.OnlineList) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, update{app, l})
}

func (r *recorder) onApps(a []Application) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apps = append(r.apps, a)
}

// take returns and forgets the updates so far.
func (r *recorder) take() []update {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.updates
	r.updates = nil
	return u
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newSource(t *testing.T, cfg Config) (*Source, *recorder, *logBuf) {
	t.Helper()
	rec, logs := &recorder{}, &logBuf{}
	cfg.OnUpdate, cfg.OnApps = rec.onUpdate, rec.onApps
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, rec, logs
}

// nodes indexes a list by node id.
func nodes(l discovery.OnlineList) map[string]*discovery.Node {
	m := map[string]*discovery.Node{}
	for _, n := range l.Nodes {
		m[n.ID] = n
	}
	return m
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

const h100 = 3.17 // engines/capacity coefficients.yaml, H100 SXM

// TestAppsNodesWeights: each app's nodes are the proxies of the nodes
// hosting its RUNNING replicas, weighted by replicas × GPUs × the card
// coefficient; the apps come with their route prefixes.
func TestAppsNodesWeights(t *testing.T) {
	c := cluster(t, nil)
	s, rec, _ := newSource(t, Config{Dashboard: c.DashboardURL()})
	if err := s.Refresh(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	apps := s.Applications()
	if len(apps) != 2 || apps[0] != (Application{Name: "chat", RoutePrefix: "/", HTTPRoute: true, Status: "RUNNING"}) ||
		apps[1] != (Application{Name: "llm", RoutePrefix: "/llm", HTTPRoute: true, Status: "RUNNING"}) || !apps[1].Routable() {
		t.Fatalf("apps %+v", apps)
	}
	if len(rec.apps) != 1 || len(rec.apps[0]) != 2 {
		t.Errorf("OnApps calls %+v", rec.apps)
	}
	ups := rec.take()
	if len(ups) != 2 || ups[0].app != "chat" || ups[1].app != "llm" {
		t.Fatalf("updates %+v", ups)
	}
	llm, ok := s.List("llm")
	if !ok || llm.Version != 1 || len(llm.Nodes) != 2 || s.Stale("llm") {
		t.Fatalf("llm list %+v ok %v stale %v", llm, ok, s.Stale("llm"))
	}
	n := nodes(llm)
	for id, want := range map[string]struct {
		cap   float64
		cards int
	}{"w1": {2 * h100, 2}, "w2": {h100, 1}} {
		got := n[id]
		if got == nil || !approx(got.Capacity, want.cap) || got.Accelerator != (discovery.Accelerator{Model: "H100", Count: want.cards}) ||
			got.Addresses["http"] != c.ProxyAddr(id) || got.Addresses["grpc"] != "" || got.State != discovery.StateReady ||
			got.Engine != "rayserve" || got.App != "llm" || !got.Load.SampledAt.IsZero() {
			t.Errorf("%s: %+v", id, got)
		}
	}
	chat, _ := s.List("chat")
	if n := nodes(chat)["head"]; len(chat.Nodes) != 1 || n == nil || n.Capacity != 1 || n.Accelerator.Count != 0 {
		t.Errorf("chat %+v", chat.Nodes)
	}
	// The proxies listed really route the app.
	resp, err := http.Post("http://"+n["w2"].Addresses["http"]+"/llm/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get(sim.NodeHeader), "llm#") {
		t.Fatalf("request through a listed node: %v %v", resp, err)
	}
	resp.Body.Close()
	// Nothing changed: no new version, no callback.
	if err := s.Refresh(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ups := rec.take(); len(ups) != 0 {
		t.Errorf("unchanged poll delivered %+v", ups)
	}
}

// TestReplicasLeave: a node whose replicas leave (removed, or no longer
// RUNNING) is gone from the list delivered by the next refresh.
func TestReplicasLeave(t *testing.T) {
	c := cluster(t, nil)
	s, rec, _ := newSource(t, Config{Dashboard: c.DashboardURL()})
	ctx := testCtx(t, 10*time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	rec.take()
	var w1, w2 []string
	for _, r := range c.Replicas("llm") {
		if r.Node == "w1" {
			w1 = append(w1, r.ID)
		} else {
			w2 = append(w2, r.ID)
		}
	}
	if err := c.RemoveReplica(ctx, w2[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ups := rec.take()
	if len(ups) != 1 || ups[0].app != "llm" || ups[0].list.Version != 2 {
		t.Fatalf("after w2's replica left: %+v", ups)
	}
	if n := nodes(ups[0].list); len(n) != 1 || n["w1"] == nil || n["w2"] != nil {
		t.Errorf("llm nodes %v", n)
	}
	// w1's node record did not change: the same snapshot, its old version.
	if n := nodes(ups[0].list)["w1"]; n.Version != 1 {
		t.Errorf("unchanged node re-versioned: %d", n.Version)
	}
	// A STARTING or STOPPING replica does not count.
	if err := c.SetReplicaState(w1[0], sim.RayStopping); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ups = rec.take()
	if len(ups) != 1 || !approx(nodes(ups[0].list)["w1"].Capacity, h100) || nodes(ups[0].list)["w1"].Version != 3 {
		t.Errorf("after one w1 replica STOPPING: %+v", ups)
	}
	if err := c.SetReplicaState(w1[1], sim.RayStarting); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ups = rec.take()
	if len(ups) != 1 || len(ups[0].list.Nodes) != 0 {
		t.Errorf("no RUNNING llm replica left: %+v", ups)
	}
}

// TestHeadOnly: every app is routed through the head's proxy alone.
func TestHeadOnly(t *testing.T) {
	c := cluster(t, func(cfg *sim.RayConfig) { cfg.ProxyLocation = "HeadOnly" })
	s, _, _ := newSource(t, Config{Dashboard: c.DashboardURL()})
	if err := s.Refresh(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	llm, _ := s.List("llm")
	n := nodes(llm)["head"]
	if len(llm.Nodes) != 1 || n == nil || n.Addresses["http"] != c.ProxyAddr("head") || !approx(n.Capacity, 3*h100) || n.Accelerator.Count != 3 {
		t.Fatalf("llm via the head: %+v", llm.Nodes)
	}
	resp, err := http.Post("http://"+n.Addresses["http"]+"/llm/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request through the head: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestUnhealthyProxies: nodes whose proxy is not HEALTHY are excluded;
// with none left next to the replicas, the healthy proxies elsewhere
// carry the app.
func TestUnhealthyProxies(t *testing.T) {
	c := cluster(t, nil)
	s, _, _ := newSource(t, Config{Dashboard: c.DashboardURL()})
	ctx := testCtx(t, 10*time.Second)
	if err := c.SetProxyStatus("w2", sim.RayDraining); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := nodes(must(s.List("llm"))); len(n) != 1 || n["w1"] == nil {
		t.Errorf("w2 draining: %v", n)
	}
	if err := c.StopProxy("w1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	n := nodes(must(s.List("llm")))
	if len(n) != 1 || n["head"] == nil || !approx(n["head"].Capacity, 3*h100) {
		t.Fatalf("no healthy proxy next to llm's replicas: %v", n)
	}
	resp, err := http.Post("http://"+n["head"].Addresses["http"]+"/llm/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request through the head's proxy: %v %v", resp, err)
	}
	resp.Body.Close()
}

func must(l discovery.OnlineList, ok bool) discovery.OnlineList {
	if !ok {
		panic("no list")
	}
	return l
}

// TestDashboardDown: an unreachable or failing dashboard keeps the last
// view, marks it stale, warns once and logs the recovery at info.
func TestDashboardDown(t *testing.T) {
	c := cluster(t, nil)
	s, rec, logs := newSource(t, Config{Dashboard: c.DashboardURL(), Timeout: time.Second,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	ctx := testCtx(t, 10*time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := s.List("llm")
	rec.take()
	if err := c.SetDashboardDown(ctx, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Refresh(ctx); err == nil {
			t.Fatal("refresh of a dashboard that is down succeeded")
		}
	}
	after, ok := s.List("llm")
	st := s.Status()
	if !ok || after.Version != before.Version || len(after.Nodes) != 2 || !s.Stale("llm") || !st.Stale || st.Failures != 3 || st.Polls != 4 || st.LastError == "" {
		t.Errorf("while down: list %+v stale %v status %+v", after, s.Stale("llm"), st)
	}
	if ups := rec.take(); len(ups) != 0 {
		t.Errorf("a down dashboard delivered %+v", ups)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"ray: dashboard unreachable"); n != 1 {
		t.Errorf("%d warnings for 3 failed polls:\n%s", n, logs)
	}
	// An error status counts as unreachable too.
	if err := c.SetDashboardDown(ctx, false); err != nil {
		t.Fatal(err)
	}
	c.SetDashboardStatus(503)
	if err := s.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("503: %v", err)
	}
	c.SetDashboardStatus(0)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Stale("llm") || s.Status().Stale || s.Status().LastError != "" {
		t.Errorf("after recovery: %+v", s.Status())
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"ray: dashboard reachable again\"") {
		t.Errorf("no recovery log:\n%s", logs)
	}
	if s.Stale("nope") != true {
		t.Error("an unknown app is not stale")
	}
}

// TestLoadMetrics: with MetricsPort, a node's load is read from Ray's
// ray_serve_* metrics on that node.
func TestLoadMetrics(t *testing.T) {
	slow := sim.Config{Model: "m", Override: sim.Profile{Prefill: time.Hour, Slots: 4}}
	c := cluster(t, func(cfg *sim.RayConfig) {
		cfg.Apps[0].Replica = slow
		cfg.Apps[0].MaxOngoingRequests = 1
		cfg.Apps[0].Replicas = []sim.RayPlacement{{Node: "w1"}, {Node: "w2"}}
	})
	s, _, _ := newSource(t, Config{Dashboard: c.DashboardURL(), MetricsPort: c.MetricsPort()})
	ctx, cancel := context.WithCancel(testCtx(t, 10*time.Second))
	defer cancel()
	// Three requests at w1's proxy, one replica per node, at most one
	// request per replica: one runs on w1's replica, one on w2's, the
	// third queues in w1's proxy.
	for i := 0; i < 3; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.ProxyAddr("w1")+"/llm/v1/completions", strings.NewReader(`{"prompt":"x"}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	// Polling with a deadline: the requests reach the proxies in their
	// own time (an external process catching up, for the test).
	deadline := time.Now().Add(5 * time.Second)
	var w1, w2 *discovery.Node
	for time.Now().Before(deadline) {
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		n := nodes(must(s.List("llm")))
		w1, w2 = n["w1"], n["w2"]
		if w1 != nil && w2 != nil && w1.Load.Running == discovery.Known(1) && w1.Load.Waiting == discovery.Known(1) && w2.Load.Running == discovery.Known(1) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if w1 == nil || w1.Load.Running != discovery.Known(1) || w1.Load.Waiting != discovery.Known(1) || w1.Load.Concurrency != discovery.Known(2) || w1.Load.SampledAt.IsZero() {
		t.Fatalf("w1 load %+v", w1)
	}
	if w2 == nil || w2.Load.Running != discovery.Known(1) || w2.Load.Waiting != discovery.Known(0) || w2.Load.SampledAt.IsZero() {
		t.Errorf("w2 load %+v", w2)
	}
}

// TestToken: the token goes in the configured header and never into
// errors or logs.
func TestToken(t *testing.T) {
	const secret = "tok-9f8e7d"
	c := cluster(t, func(cfg *sim.RayConfig) { cfg.Token = secret })
	ctx := testCtx(t, 5*time.Second)
	s, _, logs := newSource(t, Config{Dashboard: c.DashboardURL()})
	err := s.Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("without token: %v", err)
	}
	t.Setenv("SWITCHYARD_TEST_RAY_TOKEN", secret)
	s, _, logs2 := newSource(t, Config{Dashboard: c.DashboardURL(), TokenEnv: "SWITCHYARD_TEST_RAY_TOKEN"})
	if err := s.Refresh(ctx); err != nil {
		t.Fatalf("with token: %v", err)
	}
	slog.New(slog.NewTextHandler(logs2, nil)).Info("config", "config", s.cfg)
	for _, l := range []string{logs.String(), logs2.String()} {
		if strings.Contains(l, secret) {
			t.Errorf("token in logs: %s", l)
		}
	}
	if !strings.Contains(logs2.String(), "token=true") {
		t.Errorf("config log %s", logs2)
	}
	// A custom header carries the raw token.
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Ray-Token")
		_, _ = w.Write([]byte(`{"applications":{}}`))
	}))
	defer srv.Close()
	s3, _, _ := newSource(t, Config{Dashboard: srv.URL, Token: secret, TokenHeader: "X-Ray-Token"})
	if err := s3.Refresh(ctx); err != nil || got != secret {
		t.Errorf("custom header: %q %v", got, err)
	}
}

// TestRecordedDashboard runs the source on Ray's documented example
// response (served by a real server), then on a dashboard whose app is
// gone and one with gRPC servicers.
func TestRecordedDashboard(t *testing.T) {
	fixture, err := os.ReadFile("../../engines/testdata/fixtures/rayserve/api-serve-applications-ray-docs.json")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	body := fixture
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/serve/applications/" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	set := func(b []byte) { mu.Lock(); body = b; mu.Unlock() }
	s, rec, logs := newSource(t, Config{Dashboard: srv.URL + "/"})
	ctx := testCtx(t, 5*time.Second)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := s.List("app1")
	const node = "cef533a072b0f03bf92a6b98cb4eb9153b7b7c7b7f15954feb2f38ec"
	// Two RUNNING replicas (Translator, Summarizer; no ingress named),
	// CPU only; grpc_servicer_functions is empty: no gRPC proxy.
	if n := nodes(l)[node]; len(l.Nodes) != 1 || n == nil || n.Capacity != 2 || n.Addresses["http"] != "10.0.29.214:8000" || n.Addresses["grpc"] != "" {
		t.Fatalf("app1 %+v", l.Nodes)
	}
	set(bytes.Replace(fixture, []byte(`"grpc_servicer_functions": []`), []byte(`"grpc_servicer_functions": ["svc:add_Servicer_to_server"]`), 1))
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List("app1"); nodes(l)[node].Addresses["grpc"] != "10.0.29.214:9000" {
		t.Errorf("with a gRPC servicer: %+v", nodes(l)[node])
	}
	rec.take()
	set([]byte(`{"applications":{}}`))
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ups := rec.take()
	if len(ups) != 1 || ups[0].app != "app1" || len(ups[0].list.Nodes) != 0 {
		t.Errorf("app gone: %+v", ups)
	}
	if _, ok := s.List("app1"); ok || len(s.Applications()) != 0 || len(rec.apps[len(rec.apps)-1]) != 0 {
		t.Errorf("app1 still known")
	}
	// A malformed answer is a failed poll.
	set([]byte(`{"applications": [}`))
	if err := s.Refresh(ctx); err == nil || !s.Status().Stale {
		t.Errorf("malformed: %v", err)
	}
	_ = logs
}

// TestRun: Run polls until ctx ends and returns nil.
func TestRun(t *testing.T) {
	c := cluster(t, nil)
	got := make(chan string, 16)
	s, err := New(Config{Dashboard: c.DashboardURL(), Refresh: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnUpdate: func(app string, _ discovery.OnlineList) {
			select {
			case got <- app:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t, 10*time.Second))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("no update")
	}
	// A change reaches OnUpdate through Run's own polling.
	if _, err := c.AddReplica(ctx, "chat", "w1"); err != nil {
		t.Fatal(err)
	}
	for {
		var app string
		select {
		case app = <-got:
		case <-ctx.Done():
			t.Fatal("the new replica never reached OnUpdate")
		}
		if l, _ := s.List("chat"); app == "chat" && len(l.Nodes) == 2 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg     Config
		mention string
	}{
		{Config{}, "ray.dashboard"},
		{Config{Dashboard: "10.0.0.1:8265"}, "ray.dashboard"},
		{Config{Dashboard: "http://x:8265", Refresh: 3 * time.Second}, "ray.refresh"},
		{Config{Dashboard: "http://x:8265", Refresh: time.Millisecond}, "ray.refresh"},
		{Config{Dashboard: "http://x:8265", Timeout: time.Hour}, "ray.timeout"},
		{Config{Dashboard: "http://x:8265", TokenHeader: "bad header"}, "ray.token_header"},
		{Config{Dashboard: "http://x:8265", TokenEnv: "SWITCHYARD_TEST_SURELY_UNSET"}, "ray.token_env"},
		{Config{Dashboard: "http://x:8265", MetricsPort: -1}, "ray.metrics_port"},
		{Config{Dashboard: "http://x:8265", Accelerators: map[string]string{"n": ""}}, "ray.accelerators"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.mention)
		}
	}
	cfg := Config{Dashboard: "https://user:pw@x:8265"}
	if err := cfg.Validate(); err != nil || cfg.Refresh != DefaultRefresh || cfg.Timeout != DefaultRefresh || cfg.TokenHeader != "Authorization" {
		t.Errorf("defaults %+v %v", cfg, err)
	}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "cfg", cfg)
	if strings.Contains(b.String(), "pw") {
		t.Errorf("password logged: %s", b.String())
	}
}
