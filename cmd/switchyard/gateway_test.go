package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/bench/gwproc"
	"github.com/switchyard-dev/switchyard/internal/testlog"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// gatewayRun is `switchyard gateway ...` run in-process.
type gatewayRun struct {
	client, admin string // the addresses it logged ("" admin: none)
	out, errb     testlog.Buffer
	done          chan int // its exit code
}

// startGatewayRun runs `switchyard gateway ARGS` in-process until ctx
// ends, and returns once it has logged the addresses it bound (give it
// gwproc.AnyPort to listen on).
func startGatewayRun(ctx context.Context, t *testing.T, args ...string) *gatewayRun {
	t.Helper()
	g := &gatewayRun{done: make(chan int, 1)}
	w := gwproc.NewWatcher(&g.errb)
	go func() { g.done <- run(ctx, append([]string{"gateway"}, args...), &g.out, w) }()
	select {
	case <-w.Found():
	case code := <-g.done:
		t.Fatalf("exit %d before it logged its addresses: %s", code, g.errb.String())
	case <-ctx.Done():
		t.Fatalf("no listening line: %s", g.errb.String())
	}
	g.client, g.admin = w.Addrs()
	return g
}

func postModel(t *testing.T, addr, model string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"`+model+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestGatewayQuickStart runs `switchyard gateway --listen --route` and
// proxies a request through it.
func TestGatewayQuickStart(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"served":"yes"}`)
	}))
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := startGatewayRun(ctx, t, "--listen", gwproc.AnyPort, "--admin", gwproc.AnyPort, "--drain-delay", "0", "--route", "llama="+be.URL)
	addr, admin := gw.client, gw.admin
	if code, body := postModel(t, addr, "llama"); code != 200 || body != `{"served":"yes"}` {
		t.Fatalf("proxied: %d %s", code, body)
	}
	if code, body := postModel(t, addr, "other"); code != 404 || !strings.Contains(body, "llama") {
		t.Fatalf("unknown model: %d %s", code, body)
	}
	// The GC floor (--gc-floor-mib, default 64) is on unless GOGC is set:
	// the percent is raised above the process's own.
	if os.Getenv("GOGC") == "" {
		if pct := metricValue(t, "http://"+admin+"/metrics", "go_gc_gogc_percent"); pct <= 100 {
			t.Errorf("go_gc_gogc_percent %v with the GC floor on, want above 100", pct)
		}
	}
	cancel()
	if code := <-gw.done; code != 0 {
		t.Fatalf("exit %d: %s", code, gw.errb.String())
	}
	if pct := debug.SetGCPercent(-1); pct != 100 && os.Getenv("GOGC") == "" {
		t.Errorf("GC percent %d after the gateway stopped, want the process's 100 back", pct)
	} else {
		debug.SetGCPercent(pct)
	}
	// Startup and shutdown lines go through the logger (stderr), none
	// to stdout.
	for _, want := range []string{`msg="gateway: listening" addr=` + addr, `msg="gateway: admin listening" addr=` + admin, `msg="gateway: stopped"`} {
		if !strings.Contains(gw.errb.String(), want) {
			t.Errorf("stderr %q\nwant %q", gw.errb.String(), want)
		}
	}
	if gw.out.String() != "" {
		t.Errorf("stdout %q, want nothing", gw.out.String())
	}
}

// TestGatewayProcessAddresses runs the built binary through gwproc on
// ports of its choosing, in both log formats: gwproc reads the addresses
// from the startup lines as this binary writes them, and they are the
// gateway's.
func TestGatewayProcessAddresses(t *testing.T) {
	bin := stampedBinary(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := gwproc.Start(ctx, gwproc.Config{Command: []string{bin, "gateway", "--listen", gwproc.AnyPort, "--admin", gwproc.AnyPort,
				"--drain-delay", "0", "--log-format", format, "--route", "known=http://127.0.0.1:1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			if code, body := postModel(t, p.Client, "other"); code != 404 || !strings.Contains(body, "known") {
				t.Errorf("client address %s: %d %s", p.Client, code, body)
			}
			if body := getText(t, "http://"+p.Admin+"/metrics"); !strings.Contains(body, "switchyard_build_info") {
				t.Errorf("admin address %s: /metrics without switchyard_build_info", p.Admin)
			}
		})
	}
}

// getText GETs url (5 s timeout) and returns its body.
func getText(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue reads one unlabelled sample from a Prometheus text page.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(getText(t, url), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in %s", name, url)
	return 0
}

// TestGatewayConfigReload runs `switchyard gateway --config FILE`, then
// rewrites the file: a valid change is picked up, an invalid one refused.
func TestGatewayConfigReload(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{}`)
	}))
	defer be.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host := strings.TrimPrefix(be.URL, "http://")
	write("listen: {client: " + gwproc.AnyPort + "}\nroutes:\n  - match: {models: [a]}\n    nodes: [" + host + "]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := startGatewayRun(ctx, t, "--drain-delay", "0", "--config", path)
	addr, errb := gw.client, &gw.errb
	if code, _ := postModel(t, addr, "b"); code != 404 {
		t.Fatalf("b before reload: %d", code)
	}
	// The watcher looks at the file every 2 s; its log lines say what
	// it did.
	write("routes: [{bogus: 1}]\n")
	if !errb.WaitFor(ctx, "reload refused") {
		t.Fatalf("invalid file not refused; stderr %s", errb.String())
	}
	if code, _ := postModel(t, addr, "a"); code != 200 {
		t.Fatalf("old config lost after a refused reload: %d", code)
	}
	write("listen: {client: " + gwproc.AnyPort + "}\nroutes:\n  - match: {models: [a, b]}\n    nodes: [" + host + "]\n")
	if !errb.WaitFor(ctx, "gateway: reloaded") {
		t.Fatalf("reload not picked up; stderr %s", errb.String())
	}
	if code, body := postModel(t, addr, "b"); code != 200 {
		t.Fatalf("b after the reload: %d %s", code, body)
	}
	cancel()
	<-gw.done
}

// TestGatewayRayQuickStart runs `switchyard gateway --listen ADDR
// --ray-dashboard URL` against the stand-in Ray cluster: every RUNNING
// application is routed by its route prefix.
func TestGatewayRayQuickStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fast := sim.Config{Model: "m", Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 2}}
	ray, err := sim.StartRay(ctx, sim.RayConfig{
		Nodes: []sim.RayNodeConfig{{ID: "head"}, {ID: "w1"}},
		Apps: []sim.RayAppConfig{
			{Name: "llm", RoutePrefix: "/llm", Replica: fast, Replicas: []sim.RayPlacement{{Node: "w1"}}},
			{Name: "sum", RoutePrefix: "/sum", Replica: fast, Replicas: []sim.RayPlacement{{Node: "head"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ray.Close()
	gw := startGatewayRun(ctx, t, "--listen", gwproc.AnyPort, "--admin", gwproc.AnyPort, "--drain-delay", "0", "--ray-dashboard", ray.DashboardURL())
	addr, errb := gw.client, &gw.errb
	// The gateway logs the automatic routes once they are installed, and
	// each route once its table has ready nodes: from then on it is routed.
	if !errb.WaitFor(ctx, "ray_prefixes=/llm,/sum") {
		t.Fatalf("no log line with both Ray routes: %s", errb.String())
	}
	for _, name := range []string{"ray/llm", "ray/sum"} {
		if !errb.WaitFor(ctx, `msg="gateway: route has ready nodes" route=`+name+" ") {
			t.Fatalf("route %s never had ready nodes: %s", name, errb.String())
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for _, app := range []struct{ prefix, proxy string }{{"/llm", "w1"}, {"/sum", "head"}} {
		resp, err := c.Post("http://"+addr+app.prefix+"/v1/completions", "application/json", strings.NewReader(`{"model":"m","prompt":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(sim.RayProxyHeader) != app.proxy {
			t.Fatalf("%s: %d via %q, want 200 via %q; stderr %s", app.prefix, resp.StatusCode, resp.Header.Get(sim.RayProxyHeader), app.proxy, errb.String())
		}
	}
	cancel()
	if code := <-gw.done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// --ray-dashboard with --config is refused.
	if code := run(context.Background(), []string{"gateway", "--config", "x.yaml", "--ray-dashboard", ray.DashboardURL()}, io.Discard, io.Discard); code == 0 {
		t.Error("--config with --ray-dashboard accepted")
	}
}
