package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/route"
)

// rayReplica is a replica template with short timings.
var rayReplica = sim.Config{Model: "m", Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 2}}

// startRayCluster runs a stand-in Ray cluster until the test ends.
func startRayCluster(t *testing.T, cfg sim.RayConfig) *sim.RayCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sim.StartRay(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rayAsk sends one chat completion under prefix and returns the status
// and the node whose Ray proxy answered.
func rayAsk(t *testing.T, c *http.Client, gw *testGateway, prefix string) (int, string) {
	t.Helper()
	resp, body := post(t, c, gw.url(prefix+"/v1/chat/completions"), `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode == 200 && !strings.Contains(string(body), "choices") {
		t.Fatalf("%s: answer without choices: %s", prefix, body)
	}
	return resp.StatusCode, resp.Header.Get(sim.RayProxyHeader)
}

// eligible lists the route's nodes that take requests now.
func eligible(r *route.Route) []string {
	var ids []string
	if r == nil {
		return nil
	}
	t := r.Table()
	if t == nil {
		return nil
	}
	for i := 0; i < t.Ready(); i++ {
		if t.Endpoint(i).Exclusions() == 0 {
			ids = append(ids, t.Endpoint(i).ID())
		}
	}
	slices.Sort(ids)
	return ids
}

// adminRoutes reads /admin/routes.
func adminRoutes(t *testing.T, gw *testGateway) map[string]struct {
	Source string `json:"source"`
	Stale  bool   `json:"stale"`
	App    string `json:"app"`
} {
	t.Helper()
	resp, err := testClient().Get("http://" + gw.admin + "/admin/routes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Routes []struct {
			Name   string `json:"name"`
			Source string `json:"source"`
			Stale  bool   `json:"stale"`
			App    string `json:"app"`
		} `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		Source string `json:"source"`
		Stale  bool   `json:"stale"`
		App    string `json:"app"`
	}{}
	for _, r := range v.Routes {
		out[r.Name] = struct {
			Source string `json:"source"`
			Stale  bool   `json:"stale"`
			App    string `json:"app"`
		}{r.Source, r.Stale, r.App}
	}
	return out
}

// TestRayDashboardRouting: a gateway given only a Ray dashboard (the
// stand-in of engines/sim) routes each RUNNING application by its route
// prefix to the proxies of the nodes that host its replicas; stops
// sending to a node within 5 s of its last replica leaving; adds and
// removes the route of an application that starts and stops running;
// and keeps routing on its last view, marked stale, while the dashboard
// is down.
func TestRayDashboardRouting(t *testing.T) {
	ray := startRayCluster(t, sim.RayConfig{
		Nodes: []sim.RayNodeConfig{{ID: "head"}, {ID: "w1"}, {ID: "w2"}},
		Apps: []sim.RayAppConfig{
			{Name: "llm", RoutePrefix: "/llm", Replica: rayReplica, Replicas: []sim.RayPlacement{{Node: "w1"}, {Node: "w2", Count: 2}}},
			{Name: "summarize", RoutePrefix: "/summarize", Replica: rayReplica, Replicas: []sim.RayPlacement{{Node: "head"}}},
		},
	})
	if err := ray.SetAppStatus("summarize", "DEPLOYING"); err != nil {
		t.Fatal(err)
	}
	// The quick start's configuration: a ray block and no route.
	cfg := testConfig()
	cfg.Ray = &RayConfig{}
	cfg.Ray.Dashboard = ray.DashboardURL()
	gw := startGateway(t, cfg)
	c := testClient()
	llm := func() *route.Route { return gw.g.core.Routes().Route("ray/llm") }

	// Routed by prefix to the proxies of w1 and w2 (not the head's: it
	// hosts no llm replica), through the proxies themselves.
	waitFor(t, 10*time.Second, "route ray/llm over w1 and w2", func() bool {
		return slices.Equal(eligible(llm()), []string{"w1", "w2"})
	})
	seen := map[string]int{}
	for range 40 {
		st, proxy := rayAsk(t, c, gw, "/llm")
		if st != 200 {
			t.Fatalf("/llm: status %d", st)
		}
		seen[proxy]++
	}
	if seen["w1"] == 0 || seen["w2"] == 0 || seen["head"] != 0 {
		t.Fatalf("/llm answered by proxies %v, want w1 and w2 only", seen)
	}
	if rc := llm().Config(); rc.Match.RayPrefix != "/llm" || rc.App != "llm" || rc.Source != SourceRay {
		t.Fatalf("automatic route %+v", rc)
	}
	// summarize is DEPLOYING: no route yet.
	if gw.g.core.Routes().Route("ray/summarize") != nil {
		t.Fatal("a DEPLOYING application got a route")
	}
	if st, _ := rayAsk(t, c, gw, "/summarize"); st != 404 {
		t.Fatalf("/summarize before it runs: %d, want 404", st)
	}

	// w1's only replica leaves: no request goes to w1 within 5 s of it
	// leaving the RUNNING state (observed on the requests themselves).
	var w1 string
	for _, r := range ray.Replicas("llm") {
		if r.Node == "w1" {
			w1 = r.ID
		}
	}
	left := time.Now()
	if err := ray.SetReplicaState(w1, sim.RayStopping); err != nil {
		t.Fatal(err)
	}
	var lastW1 time.Time
	clean := 0
	for clean < 30 {
		if time.Since(left) > 10*time.Second {
			t.Fatalf("w1 still gets requests 10 s after its replica left (last %v after)", lastW1.Sub(left))
		}
		st, proxy := rayAsk(t, c, gw, "/llm")
		if st != 200 {
			t.Fatalf("/llm while w1 leaves: status %d", st)
		}
		if proxy == "w1" {
			lastW1, clean = time.Now(), 0
			continue
		}
		if slices.Equal(eligible(llm()), []string{"w2"}) {
			clean++
		}
	}
	stopped := lastW1.Sub(left)
	if lastW1.IsZero() {
		stopped = 0
	}
	t.Logf("w1 left the RUNNING state; its last request came %v later (table without w1: %v)", stopped, eligible(llm()))
	if stopped > 5*time.Second {
		t.Fatalf("w1 got requests %v after its replica left; want under 5 s", stopped)
	}
	rmCtx, rmCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rmCancel()
	if err := ray.RemoveReplica(rmCtx, w1); err != nil {
		t.Fatal(err)
	}

	// llm redeploys (DEPLOYING) and summarize starts running: summarize's
	// route appears and serves, built from a view where llm redeploys,
	// which keeps its route (same object) and keeps serving; summarize
	// stops: its route goes.
	before := llm()
	if err := ray.SetAppStatus("llm", "DEPLOYING"); err != nil {
		t.Fatal(err)
	}
	if err := ray.SetAppStatus("summarize", "RUNNING"); err != nil {
		t.Fatal(err)
	}
	appeared := time.Now()
	waitFor(t, 10*time.Second, "route ray/summarize", func() bool {
		return slices.Equal(eligible(gw.g.core.Routes().Route("ray/summarize")), []string{"head"})
	})
	t.Logf("summarize RUNNING -> its route served from the head's proxy after %v", time.Since(appeared))
	if st, proxy := rayAsk(t, c, gw, "/summarize"); st != 200 || proxy != "head" {
		t.Fatalf("/summarize: %d via %q", st, proxy)
	}
	if llm() != before {
		t.Error("a redeploy, or the new application's route, rebuilt or removed ray/llm")
	}
	if st, proxy := rayAsk(t, c, gw, "/llm"); st != 200 || proxy != "w2" {
		t.Fatalf("/llm while it redeploys: %d via %q", st, proxy)
	}
	if err := ray.SetAppStatus("llm", "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := ray.SetAppStatus("summarize", "DELETING"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "route ray/summarize to go", func() bool { return gw.g.core.Routes().Route("ray/summarize") == nil })
	if st, _ := rayAsk(t, c, gw, "/summarize"); st != 404 {
		t.Fatalf("/summarize after it stopped: %d, want 404", st)
	}

	// The dashboard goes down: the last view keeps routing, shown stale
	// in /admin/routes and the metrics; it comes back: fresh again.
	if ar := adminRoutes(t, gw)["ray/llm"]; ar.Source != "ray" || ar.Stale || ar.App != "llm" {
		t.Fatalf("/admin/routes ray/llm before the outage: %+v", ar)
	}
	downCtx, downCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer downCancel()
	if err := ray.SetDashboardDown(downCtx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ray/llm shown stale", func() bool { return adminRoutes(t, gw)["ray/llm"].Stale })
	for range 10 {
		if st, proxy := rayAsk(t, c, gw, "/llm"); st != 200 || proxy != "w2" {
			t.Fatalf("/llm with the dashboard down: %d via %q", st, proxy)
		}
	}
	if m := scrape(t, gw); !strings.Contains(m, `switchyard_gateway_route_stale{route="ray/llm",source="ray"} 1`) ||
		!strings.Contains(m, "switchyard_ray_dashboard_failures_total") {
		t.Errorf("metrics lack the stale route or the dashboard failures:\n%s", grepLines(m, "stale", "ray_dashboard"))
	}
	if err := ray.SetDashboardDown(downCtx, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ray/llm fresh again", func() bool { return !adminRoutes(t, gw)["ray/llm"].Stale })
	if st, proxy := rayAsk(t, c, gw, "/llm"); st != 200 || proxy != "w2" {
		t.Fatalf("/llm after the outage: %d via %q", st, proxy)
	}
}

// scrape reads the gateway's /metrics.
func scrape(t *testing.T, gw *testGateway) string {
	t.Helper()
	resp, err := testClient().Get("http://" + gw.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestRaySourceReload: a reload with an unchanged ray block keeps the
// running source and the automatic routes (same objects); an explicit
// route reading an application replaces its automatic route; a changed
// block replaces the source (the old one stops); removing the block
// removes its routes; every source goroutine ends with Serve.
func TestRaySourceReload(t *testing.T) {
	ray := startRayCluster(t, sim.RayConfig{
		Nodes: []sim.RayNodeConfig{{ID: "head"}, {ID: "w1"}},
		Apps: []sim.RayAppConfig{
			{Name: "llm", RoutePrefix: "/llm", Replica: rayReplica, Replicas: []sim.RayPlacement{{Node: "w1"}}},
			{Name: "root", RoutePrefix: "/", Replica: rayReplica, Replicas: []sim.RayPlacement{{Node: "head"}}},
		},
	})
	be := backend(t, "static", nil)
	conf := func(refresh time.Duration, routes ...RouteConfig) *Config {
		c := testConfig(append([]RouteConfig{staticRoute("static-model", be.URL)}, routes...)...)
		c.Ray = &RayConfig{}
		c.Ray.Dashboard, c.Ray.Refresh = ray.DashboardURL(), refresh
		return c
	}
	gw := startGateway(t, conf(200*time.Millisecond))
	st := func() *route.Set { return gw.g.core.Routes() }
	feeder := func() *feeder { return (*gw.g.srcs.Load())[SourceRay] }
	waitFor(t, 10*time.Second, "both automatic routes", func() bool {
		return len(eligible(st().Route("ray/llm"))) == 1 && len(eligible(st().Route("ray/root"))) == 1
	})
	// Matching order: explicit routes, then the longest prefix first.
	names := []string{}
	for _, r := range st().Routes() {
		names = append(names, r.Name())
	}
	if !slices.Equal(names, []string{"static-model", "ray/llm", "ray/root"}) {
		t.Fatalf("routes %v", names)
	}
	c := testClient()
	if st, proxy := rayAsk(t, c, gw, "/llm"); st != 200 || proxy != "w1" {
		t.Fatalf("/llm: %d via %q", st, proxy)
	}
	if st, proxy := rayAsk(t, c, gw, ""); st != 200 || proxy != "head" {
		t.Fatalf("/v1/... (the / application): %d via %q", st, proxy)
	}
	if resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"static-model"}`); resp.Header.Get("X-Node") != "static" {
		t.Fatal("the model route lost its requests to the / application")
	}

	// Same block: same source, same routes.
	f, llm := feeder(), st().Route("ray/llm")
	if err := gw.g.Reload(conf(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if feeder() != f || st().Route("ray/llm") != llm {
		t.Fatal("a reload with the same ray block rebuilt the source or its routes")
	}
	// An explicit route for llm takes over from the automatic one.
	explicit := RouteConfig{Name: "llm-explicit", App: "llm", Source: SourceRay, Match: MatchConfig{RayPrefix: "/llm"}}
	if err := gw.g.Reload(conf(200*time.Millisecond, explicit)); err != nil {
		t.Fatal(err)
	}
	if st().Route("ray/llm") != nil || feeder() != f {
		t.Fatal("the explicit route did not replace the automatic one (or the source was rebuilt)")
	}
	waitFor(t, 5*time.Second, "the explicit route fed at once", func() bool { return len(eligible(st().Route("llm-explicit"))) == 1 })
	// Changed block: a new source; the old one stops.
	if err := gw.g.Reload(conf(300*time.Millisecond, explicit)); err != nil {
		t.Fatal(err)
	}
	if feeder() == f {
		t.Fatal("a changed ray block kept the old source")
	}
	waitFor(t, 5*time.Second, "the old source's goroutine to end", func() bool { return running("discovery/ray.(*Source).Run") == 1 })
	waitFor(t, 10*time.Second, "ray/root from the new source", func() bool { return len(eligible(st().Route("ray/root"))) == 1 })
	// No block: no automatic routes, no source.
	noRay := testConfig(staticRoute("static-model", be.URL))
	if err := gw.g.Reload(noRay); err != nil {
		t.Fatal(err)
	}
	if st().Route("ray/root") != nil || (*gw.g.srcs.Load())[SourceRay] != nil {
		t.Fatal("routes or source of a removed ray block remain")
	}
	waitFor(t, 5*time.Second, "the removed source's goroutine to end", func() bool { return running("discovery/ray.(*Source).Run") == 0 })
	// A route reading ray without a ray block is refused.
	bad := testConfig(staticRoute("static-model", be.URL), explicit)
	if err := gw.g.Reload(bad); err == nil || !strings.Contains(err.Error(), "no ray block") {
		t.Fatalf("reload without a ray block: %v", err)
	}
	gw.stop()
	// The sources' goroutines (and the routes') ended with Serve; the
	// cluster's and the clients' are not the gateway's to stop.
	waitGone(t, "switchyard/discovery/ray.", "switchyard/gateway.(*Gateway)", "switchyard/gateway/route.", "switchyard/gateway/health.")
}

// running counts the goroutines with fn in their stacks.
func running(fn string) int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// waitGone waits until no goroutine runs code whose frames contain one
// of funcs.
func waitGone(t *testing.T, funcs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "TestRaySourceReload") || strings.Contains(g, "waitGone") {
				continue
			}
			for _, f := range funcs {
				if strings.Contains(g, f) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Serve returned:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
