package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReload: a reload swaps routes without dropping a streaming request
// in flight; an invalid config is refused and the old one keeps serving.
func TestReload(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Bool
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		started.Store(true)
		<-release
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	other := backend(t, "other", nil)
	gw := startGateway(t, testConfig(staticRoute("a", slow.URL)))
	c := testClient()
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), strings.NewReader(`{"model":"a","stream":true}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	waitFor(t, 5*time.Second, "the stream to start", started.Load)
	// Refused: invalid.
	bad := testConfig(staticRoute("b", other.URL))
	bad.Routes[0].Policy = "nope"
	if err := gw.g.Reload(bad); err == nil {
		t.Fatal("invalid config accepted")
	}
	// Accepted: route b added, a kept (same route object: its table,
	// breakers, pools and owner carry over).
	before := gw.g.core.Routes().Route("a")
	if err := gw.g.Reload(testConfig(staticRoute("a", slow.URL), staticRoute("b", other.URL))); err != nil {
		t.Fatal(err)
	}
	if gw.g.core.Routes().Route("a") != before {
		t.Errorf("unchanged route a was rebuilt by the reload")
	}
	resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"b"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "other" {
		t.Fatalf("new route: %d %s", resp.StatusCode, body)
	}
	changed := testConfig(staticRoute("a", slow.URL), staticRoute("b", other.URL))
	changed.Routes[0].Timeouts.Idle = 42 * time.Second
	if err := gw.g.Reload(changed); err != nil {
		t.Fatal(err)
	}
	if gw.g.core.Routes().Route("a") == before {
		t.Errorf("changed route a was not rebuilt")
	}
	close(release)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case s := <-got:
		if s != "data: one\n\ndata: two\n\n" {
			t.Fatalf("in-flight stream across reload: %q", s)
		}
	case <-timer.C:
		t.Fatal("stream did not finish")
	}
}

// TestGracefulShutdown: cancelling Serve lets an in-flight request finish,
// then refuses new connections.
func TestGracefulShutdown(t *testing.T) {
	var started atomic.Bool
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		started.Store(true)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, `{"done":true}`)
	})
	gw := startGateway(t, testConfig(staticRoute("a", slow.URL)))
	got := make(chan string, 1)
	go func() {
		resp, err := testClient().Post(gw.url("/v1/completions"), "application/json", strings.NewReader(`{"model":"a"}`))
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	waitFor(t, 5*time.Second, "the request to reach the node", started.Load)
	gw.stop()
	if s := <-got; s != `{"done":true}` {
		t.Fatalf("in-flight request during shutdown: %q", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", gw.url("/v1/models"), nil)
	if resp, err := (&http.Client{}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a new request was served after shutdown")
	}
}

// TestAdminEndpoints: health, readiness, metrics, routes and pprof.
func TestAdminEndpoints(t *testing.T) {
	be := backend(t, "b", nil)
	gw := startGateway(t, testConfig(staticRoute("a", be.URL)))
	c := testClient()
	post(t, c, gw.url("/v1/completions"), `{"model":"a"}`)
	post(t, c, gw.url("/v1/completions"), `{"model":"zzz"}`)
	for path, want := range map[string]string{
		"/healthz":          "ok",
		"/readyz":           `"ready": true`,
		"/admin/routes":     `"eligible": 1`,
		"/admin/nodes":      `"breaker": "closed"`,
		"/metrics":          `switchyard_gateway_requests_total{code="2xx",route="a"} 1`,
		"/debug/pprof/":     "goroutine",
		"/metrics#latency":  `switchyard_gateway_request_duration_seconds_count{route="a"} 1`,
		"/metrics#weights":  `switchyard_gateway_node_weight{node=`,
		"/metrics#unrouted": `switchyard_gateway_requests_total{code="4xx",route=""} 1`,
	} {
		p, _, _ := strings.Cut(path, "#")
		resp, err := c.Get("http://" + gw.admin + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, lacks %q:\n%s", path, resp.StatusCode, want, b)
		}
	}
}

// TestAdminExclude: an operator takes a node out and puts it back.
func TestAdminExclude(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	cfg := testConfig(staticRoute("m", a.URL, b.URL))
	gw := startGateway(t, cfg)
	c := testClient()
	resp, err := c.Post("http://"+gw.admin+"/admin/nodes/m/"+hostOf(a)+"/exclude", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("exclude: %v %v", err, resp)
	}
	resp.Body.Close()
	for i := 0; i < 10; i++ {
		r, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if r.Header.Get("X-Node") != "b" {
			t.Fatalf("excluded node a served request %d", i)
		}
	}
	resp, _ = c.Post("http://"+gw.admin+"/admin/nodes/m/"+hostOf(a)+"/include", "", nil)
	resp.Body.Close()
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		r, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		seen[r.Header.Get("X-Node")] = true
	}
	if !seen["a"] {
		t.Fatalf("node a not back after include: %v", seen)
	}
	resp, _ = c.Post("http://"+gw.admin+"/admin/nodes/m/nope/exclude", "", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown node: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
