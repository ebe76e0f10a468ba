package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

const pageToken = "admin-token-0123456789"

// hostileID is a node id that is also HTML, with a slash for the action
// path: the page must show it as text and act on it.
const hostileID = `<img src=x onerror="document.title='pwned'">/b&amp;`

// pageGateway runs a gateway with what the admin page shows: route m
// with two static nodes (one with a hostile id), a route with an A/B
// split and one mirrored to a shadow that answers differently.
func pageGateway(t *testing.T) *testGateway {
	t.Helper()
	na := backend(t, "a", nil)
	nb := backend(t, "b", nil)
	sc := split.DefaultConfig()
	sc.Variants = split.Variants{{Name: "va", Weight: 75, Target: "model-a"}, {Name: "vb", Weight: 25, Target: "model-b"}}
	sc.Key = split.KeyConfig{Header: "X-User"}
	shc := shadow.DefaultConfig()
	shc.Target = "model-b"
	shc.Compare.Fields = []string{"node"}
	cfg := testConfig(
		RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{ID: "a", HTTP: hostOf(na)}, {ID: hostileID, HTTP: hostOf(nb)}}},
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{HTTP: hostOf(na)}}, Split: &sc},
		RouteConfig{Name: "mirrored", Match: MatchConfig{Models: []string{"mirrored"}}, Nodes: []NodeConfig{{HTTP: hostOf(na)}}, Shadow: &shc},
		staticRoute("model-a", na.URL),
		staticRoute("model-b", nb.URL),
	)
	cfg.Admin.TokenFile = adminTokenFile(t, pageToken)
	gw := startGateway(t, cfg)
	c := testClient()
	for u := range 8 {
		if resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"chat"}`, "X-User", fmt.Sprintf("user-%d", u)); resp.StatusCode != 200 {
			t.Fatalf("chat: %d %s", resp.StatusCode, body)
		}
	}
	for range 2 {
		if resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"mirrored"}`); resp.StatusCode != 200 {
			t.Fatalf("mirrored: %d %s", resp.StatusCode, body)
		}
	}
	// The shadow compares on its own workers.
	waitFor(t, 10*time.Second, "the two shadow comparisons", func() bool {
		var s struct {
			Shadows []struct {
				Compared int `json:"compared"`
			} `json:"shadows"`
		}
		getAdmin(t, gw, "/admin/shadows", &s)
		return len(s.Shadows) == 1 && s.Shadows[0].Compared == 2
	})
	return gw
}

// getAdmin decodes an admin JSON endpoint into v.
func getAdmin(t *testing.T, gw *testGateway, path string, v any) {
	t.Helper()
	resp, err := testClient().Get("http://" + gw.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// adminBody returns an admin endpoint's body as text.
func adminBody(t *testing.T, gw *testGateway, path string) string {
	t.Helper()
	resp, err := testClient().Get("http://" + gw.admin + path)
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

// adminAction POSTs a node action with the token.
func adminAction(t *testing.T, gw *testGateway, route, node, action string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+gw.admin+"/admin/nodes/"+route+"/"+node+"/"+action, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+pageToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s/%s: %d %s", action, route, node, resp.StatusCode, b)
	}
}

var (
	snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	// externalRef finds what would load from elsewhere: a source or link
	// to another origin, a stylesheet import, a CSS url().
	externalRef = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*["']?(https?:)?//|<link[^>]*stylesheet|@import|url\(`)
	durationKey = regexp.MustCompile(`^(period|mean_latency|mean_ttfb|silent_for|age|last_heartbeat_age|primary_latency|shadow_latency|connect|first_byte|idle|total)$`)
)

// checkShape walks a decoded JSON document: every object key is
// snake_case (except the keys of match.headers, which are header names)
// and every duration is a Go duration string.
func checkShape(t *testing.T, where string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "headers" {
				continue
			}
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", where, k)
			}
			if durationKey.MatchString(k) && e != nil {
				s, ok := e.(string)
				if _, err := time.ParseDuration(s); !ok || (err != nil && s != "off") {
					t.Errorf("%s.%s = %v: not a duration string", where, k, e)
				}
			}
			checkShape(t, where+"."+k, e)
		}
	case []any:
		for i, e := range x {
			checkShape(t, fmt.Sprintf("%s[%d]", where, i), e)
		}
	}
}

// TestAdminJSON: the admin API speaks snake_case with durations as
// strings, and says what the page shows: routes with their timeouts,
// nodes with their state, weights over time, split results, shadow
// differences, and that API keys are off.
func TestAdminJSON(t *testing.T) {
	gw := pageGateway(t)
	for _, p := range []string{"/admin/routes", "/admin/nodes", "/admin/weights", "/admin/splits", "/admin/shadows", "/admin/tenants"} {
		var doc any
		getAdmin(t, gw, p, &doc)
		checkShape(t, p, doc)
	}

	var routes struct {
		Routes []struct {
			Name     string `json:"name"`
			Eligible int    `json:"eligible"`
			Serving  bool   `json:"serving"`
			Split    bool   `json:"split"`
			Timeouts struct {
				Connect string `json:"connect"`
				Total   string `json:"total"`
			} `json:"timeouts"`
		} `json:"routes"`
	}
	getAdmin(t, gw, "/admin/routes", &routes)
	if len(routes.Routes) != 5 {
		t.Fatalf("routes: %+v", routes)
	}
	if r := routes.Routes[0]; r.Name != "m" || r.Eligible != 2 || !r.Serving || r.Timeouts.Total != "10s" || r.Timeouts.Connect != "3s" {
		t.Errorf("route m: %+v", r)
	}
	if !routes.Routes[1].Split {
		t.Errorf("route chat has no split: %+v", routes.Routes[1])
	}

	var weights struct {
		Period string `json:"period"`
		Series []struct {
			Route   string    `json:"route"`
			Node    string    `json:"node"`
			Weights []float64 `json:"weights"`
		} `json:"series"`
	}
	getAdmin(t, gw, "/admin/weights", &weights)
	seen := map[string]bool{}
	for _, s := range weights.Series {
		if s.Route == "m" && len(s.Weights) > 0 && s.Weights[len(s.Weights)-1] > 0 {
			seen[s.Node] = true
		}
	}
	if weights.Period != "5s" || !seen["a"] || !seen[hostileID] {
		t.Errorf("weights: %+v", weights)
	}

	var splits struct {
		Splits []struct {
			Route    string `json:"route"`
			Variants []struct {
				Name        string  `json:"name"`
				TargetRoute string  `json:"target_route"`
				Share       float64 `json:"share"`
				Requests    int     `json:"requests"`
				Errors      int     `json:"errors"`
				MeanLatency *string `json:"mean_latency"`
			} `json:"variants"`
		} `json:"splits"`
	}
	getAdmin(t, gw, "/admin/splits", &splits)
	if len(splits.Splits) != 1 || len(splits.Splits[0].Variants) != 2 {
		t.Fatalf("splits: %+v", splits)
	}
	total := 0
	for i, v := range splits.Splits[0].Variants {
		want := []float64{0.75, 0.25}[i]
		if v.Share != want || v.TargetRoute != "model-"+v.Name[1:] || v.Errors != 0 || (v.Requests > 0) != (v.MeanLatency != nil) {
			t.Errorf("variant %+v, want share %v", v, want)
		}
		total += v.Requests
	}
	if total != 8 {
		t.Errorf("split variants served %d requests, want 8", total)
	}

	var shadows struct {
		Shadows []struct {
			Route       string `json:"route"`
			Compared    int    `json:"compared"`
			Differences int    `json:"differences"`
			Fields      []struct {
				Field      string `json:"field"`
				Mismatches int    `json:"mismatches"`
			} `json:"fields"`
			Recent []struct {
				PrimaryStatus int `json:"primary_status"`
				ShadowStatus  int `json:"shadow_status"`
				Fields        []struct {
					Field string `json:"field"`
					Equal bool   `json:"equal"`
				} `json:"fields"`
			} `json:"recent_differences"`
		} `json:"shadows"`
	}
	getAdmin(t, gw, "/admin/shadows", &shadows)
	s := shadows.Shadows[0]
	if s.Route != "mirrored" || s.Differences != 2 || len(s.Fields) != 1 || s.Fields[0].Mismatches != 2 || len(s.Recent) != 2 {
		t.Fatalf("shadow: %+v", s)
	}
	if r := s.Recent[0]; r.PrimaryStatus != 200 || r.ShadowStatus != 200 || len(r.Fields) != 1 || r.Fields[0].Field != "node" || r.Fields[0].Equal {
		t.Errorf("recent difference: %+v", r)
	}

	var tenants struct {
		Enabled bool  `json:"enabled"`
		Tenants []any `json:"tenants"`
	}
	getAdmin(t, gw, "/admin/tenants", &tenants)
	if tenants.Enabled || tenants.Tenants == nil || len(tenants.Tenants) != 0 {
		t.Errorf("tenants without keys: %+v", tenants)
	}

	// The page: one HTML file with a policy that allows only itself.
	resp, err := testClient().Get("http://" + gw.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Errorf("GET /: %d %q, CSP %q", resp.StatusCode, resp.Header.Get("Content-Type"), csp)
	}
	if m := externalRef.FindString(string(page)); m != "" {
		t.Errorf("the page loads something from outside itself: %q", m)
	}
	// Only GET / is the page; other paths stay 404, and the page keeps the
	// admin API's Host check.
	req, _ := http.NewRequest("GET", "http://"+gw.admin+"/", nil)
	req.Host = "evil.example"
	for _, tc := range []struct {
		req  *http.Request
		want int
	}{{req, 421}, {mustGet("http://" + gw.admin + "/nope"), 404}} {
		resp, err := testClient().Do(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (Host %s): %d, want %d", tc.req.URL.Path, tc.req.Host, resp.StatusCode, tc.want)
		}
	}
}

func mustGet(url string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// browser starts Debian's chromium headless for one test (skipped when it
// is not installed, a failure under CI=true) and returns a context for
// its tab. Every action the test runs takes a context with a timeout
// derived from it; the whole browser lives at most limit.
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not installed: apt-get install -y chromium")
	}
	life, cancelLife := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancelLife)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its singleton socket's directory goes to TMPDIR, and stays
		// there when the browser is killed: the test's own one is removed.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return tab
}

// pageRow is a node row of the admin page.
type pageRow struct {
	Route, Node, Excluded, IDText string
	Spark                         bool
}

const pageRowsJS = `[...document.querySelectorAll("#nodes tbody tr[data-node]")].map(r => ({
	Route: r.dataset.route, Node: r.dataset.node, Excluded: r.dataset.excluded,
	IDText: r.querySelector("td .mono").textContent,
	Spark: r.querySelector("svg.spark polyline") !== null }))`

// TestAdminPage drives the admin page in headless Chromium against a
// running gateway: it loads without console errors, shows the gateway's
// nodes (a hostile node id as plain text), its split and shadow, and
// reflects a node excluded through the admin API within a few refreshes;
// with the token, its buttons include and exclude nodes. With
// SWITCHYARD_ADMINPAGE_SCREENSHOT=file.png it saves a screenshot.
func TestAdminPage(t *testing.T) {
	tab := browser(t, 2*time.Minute)
	began := time.Now()
	gw := pageGateway(t)
	const a = "a"

	// Collect console errors and uncaught exceptions from the start.
	var mu sync.Mutex
	var problems []string
	cctx, stopConsole := context.WithCancel(tab)
	msgs := chromedp.Console(cctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()

	step := func(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, d)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// rowsUntil polls the page's node rows until ok holds (the page
	// refreshes every 2 s).
	rowsUntil := func(what string, ok func(map[string]pageRow) bool) map[string]pageRow {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(tab, 5*time.Second)
			list, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](pageRowsJS))
			cancel()
			if err != nil {
				t.Fatalf("%s: reading the page: %v", what, err)
			}
			rows := map[string]pageRow{}
			for _, r := range list {
				if r.Route == "m" {
					rows[r.Node] = r
				}
			}
			if ok(rows) {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page did not show %s: %+v", what, rows)
			}
			step("waiting", 5*time.Second, chromedp.Sleep(200*time.Millisecond)) // the browser catches up
		}
	}

	step("loading the page", 20*time.Second,
		chromedp.Navigate("http://"+gw.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#nodes table`)))
	loaded := time.Now()
	rows := rowsUntil("both nodes of route m", func(r map[string]pageRow) bool { return len(r) == 2 })
	if r := rows[a]; r.Excluded != "" || r.IDText != a || !r.Spark {
		t.Errorf("node a: %+v", r)
	}
	if r, ok := rows[hostileID]; !ok || r.IDText != hostileID {
		t.Errorf("hostile node id shown as %+v, want the text %q", r, hostileID)
	}

	// The rest of the page: split variants, shadow counts and recent
	// differences, tenants off; nothing the data held became markup.
	type summary struct {
		Title       string
		Images      int
		Variants    []string
		Differences string
		RecentRows  int
		Tenants     string
		Status      string
	}
	sum, err := chromedp.Run(tab, chromedp.Evaluate[summary](`(() => {
		const counts = {};
		document.querySelectorAll("#shadows dl.counts div").forEach(d => counts[d.querySelector("dt").textContent] = d.querySelector("dd").textContent);
		const tables = [...document.querySelectorAll("#shadows table")];
		const recent = tables.find(t => t.caption && t.caption.textContent.startsWith("Recent differences"));
		return {
			Title: document.title,
			Images: document.querySelectorAll("img").length,
			Variants: [...document.querySelectorAll("#splits tbody tr")].map(r => r.dataset.variant),
			Differences: counts["differences"],
			RecentRows: recent ? recent.tBodies[0].rows.length : 0,
			Tenants: document.getElementById("tenants").textContent,
			Status: document.getElementById("updated").textContent,
		};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Title != "Switchyard gateway" || sum.Images != 0 || strings.Join(sum.Variants, ",") != "va,vb" ||
		sum.Differences != "2" || sum.RecentRows != 2 || !strings.Contains(sum.Tenants, "API keys are off") || !strings.HasPrefix(sum.Status, "Updated") {
		t.Errorf("page: %+v", sum)
	}

	// An operator excludes node a through the admin API: the page shows
	// it within a few refreshes.
	excluded := time.Now()
	adminAction(t, gw, "m", a, "exclude")
	rowsUntil("node a excluded", func(r map[string]pageRow) bool { return r[a].Excluded == "admin" })
	t.Logf("page shows the exclusion after %v", time.Since(excluded).Round(time.Millisecond))

	// With the token the page's buttons act: include a (a real click) and
	// exclude the hostile node (its id has a slash and markup).
	step("entering the token", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#actions summary`)),
		chromedp.SendKeys(chromedp.ID("token"), pageToken),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes tr[data-node="a"] button`)),
		chromedp.Click(chromedp.CSS(`#nodes tr[data-node="a"] button`)))
	rowsUntil("node a included again", func(r map[string]pageRow) bool { return r[a].Excluded == "" })
	id, _ := json.Marshal(hostileID)
	step("excluding the hostile node", 10*time.Second, chromedp.Evaluate[chromedp.Void](
		`[...document.querySelectorAll("#nodes tbody tr[data-node]")].find(r => r.dataset.node === `+string(id)+`).querySelector("button").click()`))
	rowsUntil("the hostile node excluded", func(r map[string]pageRow) bool { return r[hostileID].Excluded == "admin" })
	var nodes struct {
		Nodes []struct {
			Route    string   `json:"route"`
			ID       string   `json:"id"`
			Excluded []string `json:"excluded"`
		} `json:"nodes"`
	}
	getAdmin(t, gw, "/admin/nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Route == "m" && (n.ID == hostileID) != (len(n.Excluded) == 1 && n.Excluded[0] == "admin") {
			t.Errorf("after the page's actions, node %q is excluded for %v", n.ID, n.Excluded)
		}
	}

	if out := os.Getenv("SWITCHYARD_ADMINPAGE_SCREENSHOT"); out != "" {
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil || os.WriteFile(out, png, 0o644) != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
	stopConsole()
	<-consoleDone
	mu.Lock()
	for _, p := range problems {
		t.Errorf("console: %s", p)
	}
	mu.Unlock()

	// When the gateway goes away the page says so and keeps the last data
	// (the browser logs the refused fetches; they are not collected here).
	gw.stop()
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	status, err := chromedp.Run(ctx, chromedp.Poll[string](
		`document.getElementById("status").className === "error" && document.getElementById("status").textContent`,
		chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil || !strings.HasPrefix(status, "Update failed") {
		t.Errorf("after the gateway stopped, the status says %q (%v)", status, err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#nodes tbody tr[data-node]").length`)); err != nil || n != 6 {
		t.Errorf("after the gateway stopped, the page shows %d node rows (%v), want the last 6", n, err)
	}
	t.Logf("browser test: %v in all, %v after the page loaded", time.Since(began).Round(time.Millisecond), time.Since(loaded).Round(time.Millisecond))
}
