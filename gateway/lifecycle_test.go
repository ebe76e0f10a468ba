package gateway

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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
	// The model label is the route's configured name once the core looks
	// it up, "" before (telemetry's package doc); either is accepted.
	for path, want := range map[string]string{
		"/healthz":           regexp.QuoteMeta("ok"),
		"/readyz":            regexp.QuoteMeta(`"ready": true`),
		"/admin/routes":      regexp.QuoteMeta(`"eligible": 1`),
		"/admin/nodes":       regexp.QuoteMeta(`"breaker": "closed"`),
		"/metrics":           `switchyard_gateway_requests_total\{code="2xx",model="a?",route="a"\} 1\n`,
		"/debug/pprof/":      regexp.QuoteMeta("pprof is off"),
		"/metrics#latency":   `switchyard_gateway_request_duration_seconds_count\{model="a?",route="a"\} 1\n`,
		"/metrics#weights":   regexp.QuoteMeta(`switchyard_gateway_node_weight{node=`),
		"/metrics#unrouted":  `switchyard_gateway_requests_total\{code="4xx",model="",route=""\} 1\n`,
		"/metrics#build":     `switchyard_build_info\{go_version="go[^"]+",revision="[^"]+",version="[^"]+"\} 1\n`,
		"/metrics#runtime":   `\ngo_goroutines \d+\n`,
		"/metrics#process":   `\nprocess_resident_memory_bytes \S+\n`,
		"/metrics#noretries": `switchyard_gateway_retries_total\{route="a"\} 0\n`,
		"/metrics#nodetime":  `switchyard_gateway_node_upstream_seconds_count\{node="[^"]+",route="a"\} 1\n`,
		"/metrics#fallbacks": `switchyard_gateway_fallbacks_total\{reason="5xx",route="a"\} 0\n`,
	} {
		p, _, _ := strings.Cut(path, "#")
		resp, err := c.Get("http://" + gw.admin + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantStatus := 200
		if p == "/debug/pprof/" {
			wantStatus = 404 // off unless admin.pprof
		}
		if resp.StatusCode != wantStatus || !regexp.MustCompile(want).Match(b) {
			t.Errorf("%s: %d, lacks %q:\n%s", path, resp.StatusCode, want, b)
		}
		if p == "/metrics" {
			// route="" is "answered before a route was chosen", never "all
			// routes": only the request counter and latency have it.
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, `route=""`) && !strings.HasPrefix(line, "switchyard_gateway_requests_total{") &&
					!strings.HasPrefix(line, "switchyard_gateway_request_duration_seconds_") {
					t.Errorf("/metrics: a route=\"\" series outside requests and latency: %s", line)
				}
			}
		}
	}
}

// TestAdminExclude: an operator takes a node out and puts it back.
func TestAdminExclude(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	cfg := testConfig(staticRoute("m", a.URL, b.URL))
	cfg.Admin.TokenFile = adminTokenFile(t, "admin-token-0123456789")
	gw := startGateway(t, cfg)
	c := testClient()
	act := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+gw.admin+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := act("/admin/nodes/m/" + hostOf(a) + "/exclude"); resp.StatusCode != 200 {
		t.Fatalf("exclude: %v", resp.Status)
	}
	for i := 0; i < 10; i++ {
		r, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if r.Header.Get("X-Node") != "b" {
			t.Fatalf("excluded node a served request %d", i)
		}
	}
	act("/admin/nodes/m/" + hostOf(a) + "/include")
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		r, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		seen[r.Header.Get("X-Node")] = true
	}
	if !seen["a"] {
		t.Fatalf("node a not back after include: %v", seen)
	}
	if resp := act("/admin/nodes/m/nope/exclude"); resp.StatusCode != 404 {
		t.Fatalf("unknown node: %d", resp.StatusCode)
	}
}

func adminTokenFile(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAdminSecurity: actions and pprof need the token (and refuse without
// one configured), actions need a JSON body, the admin API refuses other
// Host values (DNS rebinding), pprof is off unless enabled; health,
// readiness and metrics stay open to any Host.
func TestAdminSecurity(t *testing.T) {
	be := backend(t, "b", nil)
	const tok = "admin-token-0123456789"
	do := func(gw *testGateway, method, path, host, auth, ct string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+gw.admin+path, strings.NewReader("{}"))
		if host != "" {
			req.Host = host
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	exclude := "/admin/nodes/m/" + hostOf(be) + "/exclude"
	open := startGateway(t, testConfig(staticRoute("m", be.URL)))
	if s := do(open, "POST", exclude, "", tok, "application/json"); s != 403 {
		t.Errorf("action without a configured token: %d, want 403", s)
	}
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Admin.TokenFile = adminTokenFile(t, tok)
	cfg.Admin.PProf = true
	gw := startGateway(t, cfg)
	for _, tc := range []struct {
		name, method, path, host, auth, ct string
		want                               int
	}{
		{"no token", "POST", exclude, "", "", "application/json", 401},
		{"wrong token", "POST", exclude, "", "nope-nope-nope-nope", "application/json", 401},
		{"form post", "POST", exclude, "", tok, "application/x-www-form-urlencoded", 415},
		{"rebound host", "POST", exclude, "evil.example", tok, "application/json", 421},
		{"rebound host reading", "GET", "/admin/nodes", "evil.example:8081", "", "", 421},
		{"action", "POST", exclude, "", tok, "application/json", 200},
		{"pprof without token", "GET", "/debug/pprof/", "", "", "", 401},
		{"pprof", "GET", "/debug/pprof/", "", tok, "", 200},
		{"healthz any host", "GET", "/healthz", "evil.example", "", "", 200},
		{"metrics any host", "GET", "/metrics", "evil.example", "", "", 200},
		{"readyz any host", "GET", "/readyz", "evil.example", "", "", 200},
	} {
		if s := do(gw, tc.method, tc.path, tc.host, tc.auth, tc.ct); s != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, s, tc.want)
		}
	}
}
