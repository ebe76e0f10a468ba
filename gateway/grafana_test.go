package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// dashboardFile is the Grafana dashboard that TestGrafanaDashboard checks.
const dashboardFile = "../deploy/grafana/switchyard.json"

// rateWindow stands for $__rate_interval: one window over the whole
// traffic of the test, so that every rate has samples on both sides.
const rateWindow = "1m"

// Jobs of the test's Prometheus.
const (
	gatewayJob  = "switchyard-gateway"
	resourceJob = "switchyard-resource"
)

// TestGrafanaDashboard is issue 15's Grafana test: every query of
// deploy/grafana/switchyard.json names only metrics that a live gateway
// and Resource export, and returns data once Prometheus has scraped them
// under traffic.
//
// It runs a Resource instance with two agents heartbeating simulated
// engines, a gateway with API keys on, a discovery route over those two
// engines, a static route over one (per-node limit 2, so bursts queue) and
// a static route whose second node is down (its breaker opens, its health
// check excludes it, requests retry), and drives streamed and buffered
// requests of two tenants, batch and interactive, an unknown model and an
// unknown key through it. Then:
//
//   - dashboard: the JSON loads; panel ids are unique; every panel and
//     query uses the ${datasource} variable; the route, model and job
//     variables exist;
//   - names: every metric name in every query (a small PromQL tokenizer)
//     is in the live scrape of the gateway or the Resource;
//   - prometheus: Debian's prometheus scrapes both every 500 ms into a
//     temporary directory; each query, its variables resolved through
//     Prometheus as Grafana would and $__rate_interval set to rateWindow,
//     must parse and return data. Skipped when prometheus is not
//     installed, except under CI=true, where it fails.
func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t, dashboardFile)
	st := startObservedStack(t)
	st.drive(t)

	t.Run("dashboard", func(t *testing.T) { checkDashboardShape(t, d) })

	t.Run("names", func(t *testing.T) {
		exported := exportedNames(scrapeText(t, "http://"+st.gw.admin+"/metrics", ""), scrapeText(t, "http://"+st.resAddr+"/metrics", st.resToken))
		for _, q := range d.queries() {
			names, err := metricNames(q.expr)
			if err != nil {
				t.Errorf("%s: %v", q, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("%s: names no metric", q)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: %s is not in the live scrape of the gateway or the Resource", q, n)
				}
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		bin, err := exec.LookPath("prometheus")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
			}
			t.Skip("prometheus is not installed (apt-get install prometheus)")
		}
		p := startPrometheus(t, bin, st.gw.admin, st.resAddr, st.resToken)
		// Both targets scraped at least three times, the last one after
		// the traffic ended: every counter holds its final value, and every
		// rate has samples.
		// (Prometheus 2.x hands new targets to its scrapers after up to 5 s.)
		trafficEnd := st.trafficEnd
		p.poll(t, 30*time.Second, "Prometheus to scrape both targets after the traffic", func() bool {
			ok := true
			for _, job := range []string{gatewayJob, resourceJob} {
				last, _ := p.scalar(t, fmt.Sprintf(`timestamp(up{job=%q} == 1)`, job))
				n, _ := p.scalar(t, fmt.Sprintf(`count_over_time(up{job=%q}[1m])`, job))
				ok = ok && last > float64(trafficEnd.UnixMilli())/1000 && n >= 3
			}
			return ok
		})
		vars := p.resolveVariables(t, d)
		t.Logf("variables: %v", vars)
		var empty []string
		for _, q := range d.queries() {
			expr := substitute(q.expr, vars)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: a variable is left after substitution: %s", q, expr)
				continue
			}
			res, err := p.query(t, expr)
			if err != nil {
				t.Errorf("%s: %v\n  %s", q, err, expr)
				continue
			}
			if len(res) == 0 {
				empty = append(empty, q.String())
				t.Errorf("%s: no data\n  %s", q, expr)
			}
		}
		t.Logf("%d queries evaluated; %d without data", len(d.queries()), len(empty))
	})
}

// observedStack is what the dashboard shows: a Resource with agents, the
// engines behind them and behind static routes, and a gateway.
type observedStack struct {
	gw         *testGateway
	resAddr    string
	resToken   string
	keys       [2]string // team-a (interactive), team-b (batch)
	trafficEnd time.Time
}

func startObservedStack(t *testing.T) *observedStack {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := &observedStack{resToken: "resource-token-0123456789", keys: [2]string{"sk-grafana-team-a-0123456789abcdef", "sk-grafana-team-b-0123456789abcdef"}}

	// The Resource tier: one instance.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: st.resToken, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.Serve(rctx, ln) }()
	t.Cleanup(func() { rcancel(); <-rdone })
	st.resAddr = ln.Addr().String()

	// Simulated engines: two for the discovery route (announced by their
	// agents), one for the static route, two for the flaky one.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	engine := func(model string) *sim.Node {
		nd, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", Model: model, Profile: "h100",
			Override: sim.Profile{Prefill: 5 * time.Millisecond, PerToken: 2 * time.Millisecond, MaxTokens: 8}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nd.Close() })
		return nd
	}
	for i := range 2 {
		nd := engine("llama")
		a, err := agent.New(agent.Config{Servers: []string{st.resAddr}, Token: st.resToken, NodeID: fmt.Sprintf("llama-%d", i), App: "llama",
			Addresses: map[string]string{"http": nd.Addr()}, Engine: "vllm", Capacity: 1, Period: 200 * time.Millisecond, InitialDelay: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	static := engine("static")
	flakyUp, flakyErr, flakyDead := engine("flaky"), engine("flaky"), engine("flaky")
	flakyErr.Fail(sim.ModeError) // answers inference 500, health 200: its breaker opens
	flakyDead.Crash()            // refuses connections: its health check excludes it

	// API keys on: two tenants, one of them batch.
	keyFile := filepath.Join(t.TempDir(), "keys.yaml")
	keys := "keys:\n" +
		"  - {key: " + st.keys[0] + ", tenant: team-a}\n" +
		"  - {key: " + st.keys[1] + ", tenant: team-b, priority: batch}\n"
	if err := os.WriteFile(keyFile, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(
		RouteConfig{Name: "llama", Match: MatchConfig{Models: []string{"llama"}}},
		RouteConfig{Name: "static", Match: MatchConfig{Models: []string{"static"}}, Nodes: []NodeConfig{{ID: "static-0", HTTP: static.Addr()}}},
		RouteConfig{Name: "flaky", Match: MatchConfig{Models: []string{"flaky"}},
			Nodes: []NodeConfig{{ID: "flaky-up", HTTP: flakyUp.Addr()}, {ID: "flaky-err", HTTP: flakyErr.Addr()}, {ID: "flaky-dead", HTTP: flakyDead.Addr()}}},
	)
	cfg.Discovery = &DiscoveryConfig{Servers: []string{st.resAddr}, Token: st.resToken}
	cfg.Auth = &tenant.Config{Path: keyFile, Interval: time.Second}
	cfg.Limits.MaxPerNode = 2
	cfg.WeightPeriod = 200 * time.Millisecond
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		rc.Breaker.Failures = 2
		rc.Breaker.OpenFor = time.Hour
		rc.HealthCheck.Interval = 100 * time.Millisecond
	}
	st.gw = startGateway(t, cfg)
	return st
}

// drive sends the dashboard's traffic: buffered and streamed requests of
// both tenants on the discovery and static routes (bursts that queue on
// the static route's one node; every answer must be 200), an unknown
// model, an unknown key, and requests to the flaky route until its
// erring node's breaker is open and its dead node is out by its health
// check (their answers are not checked: retries may save them or not).
func (st *observedStack) drive(t *testing.T) {
	t.Helper()
	c := testClient()
	call := func(key, model string, stream bool) int {
		body := `{"model":"` + model + `","messages":[{"role":"user","content":"what is on the dashboard"}],"max_tokens":8}`
		if stream {
			body = `{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"what is on the dashboard"}],"max_tokens":8}`
		}
		resp, b := post(t, c, st.gw.url("/v1/chat/completions"), body, "Authorization", "Bearer "+key)
		if stream && resp.StatusCode == 200 && !bytes.Contains(b, []byte("data: [DONE]")) {
			t.Errorf("%s stream without its end: %s", model, b)
		}
		return resp.StatusCode
	}
	// The discovery route serves once the agents' nodes reached it.
	waitFor(t, 10*time.Second, "the discovery route to serve", func() bool { return call(st.keys[0], "llama", false) == 200 })
	var wg sync.WaitGroup
	errs := make(chan string, 256)
	for _, model := range []string{"llama", "static"} {
		for _, key := range st.keys {
			for _, stream := range []bool{false, true} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 6 { // 6 concurrent × 2 tenants on the static route's 2 slots: a queue
						if code := call(key, model, stream); code != 200 {
							errs <- fmt.Sprintf("%s stream=%t: %d", model, stream, code)
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if code := call(st.keys[0], "no-such-model", false); code != 404 {
		t.Errorf("unknown model: %d, want 404", code)
	}
	if code := call("sk-grafana-unknown-0123456789abcdef", "llama", false); code != 401 {
		t.Errorf("unknown key: %d, want 401", code)
	}
	n := 0
	waitFor(t, 10*time.Second, "the erring node's breaker to open and the dead node's health check to exclude it", func() bool {
		call(st.keys[n%2], "flaky", n%4 < 2)
		n++
		fams := scrapeMetrics(t, st.gw)
		b, _ := metricValue(fams, "switchyard_gateway_node_breaker_state", "route", "flaky", "node", "flaky-err")
		h, _ := metricValue(fams, "switchyard_gateway_node_health_excluded", "route", "flaky", "node", "flaky-dead")
		return b == 2 && h == 1
	})
	fams := scrapeMetrics(t, st.gw)
	if v, _ := metricValue(fams, "switchyard_gateway_queue_requests_total", "route", "static", "outcome", "dispatched"); v == 0 {
		t.Errorf("no request waited in the static route's queue; families: %s", familyNames(fams))
	}
	st.trafficEnd = time.Now()
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID           string       `json:"uid"`
	Title         string       `json:"title"`
	SchemaVersion int          `json:"schemaVersion"`
	Panels        []*gfPanel   `json:"panels"`
	Templating    gfTemplating `json:"templating"`
}

type gfPanel struct {
	ID         int           `json:"id"`
	Type       string        `json:"type"`
	Title      string        `json:"title"`
	Datasource *gfDatasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []gfTarget `json:"targets"`
	Panels  []*gfPanel `json:"panels"` // a collapsed row's
}

type gfTarget struct {
	RefID      string        `json:"refId"`
	Expr       string        `json:"expr"`
	Datasource *gfDatasource `json:"datasource"`
}

type gfDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gfTemplating struct {
	List []gfVariable `json:"list"`
}

type gfVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *gfDatasource   `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// loadDashboard decodes the dashboard strictly enough: valid JSON with
// the fields above.
func loadDashboard(t *testing.T, path string) *dashboard {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &d
}

// panels returns every panel, those inside collapsed rows included.
func (d *dashboard) panels() []*gfPanel {
	var out []*gfPanel
	var walk func([]*gfPanel)
	walk = func(ps []*gfPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// panelQuery is one query of one panel.
type panelQuery struct {
	panel *gfPanel
	ref   string
	expr  string
}

func (q panelQuery) String() string {
	return fmt.Sprintf("panel %d %q query %s", q.panel.ID, q.panel.Title, q.ref)
}

func (d *dashboard) queries() []panelQuery {
	var out []panelQuery
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{p, tg.RefID, tg.Expr})
		}
	}
	return out
}

// variable returns the dashboard's template variable name, or nil.
func (d *dashboard) variable(name string) *gfVariable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// labelValuesQuery parses a variable's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// query is a query variable's PromQL-side definition: Grafana keeps it in
// "query" as a string or as {"query": ...}, and in "definition".
func (v *gfVariable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil && s != "" {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

// checkDashboardShape checks what Grafana needs to load the dashboard
// anywhere: unique panel ids, the ${datasource} variable on every panel,
// query and query variable (no datasource uid of one installation), the
// variables the queries use, and a layout on the 24-column grid.
func checkDashboardShape(t *testing.T, d *dashboard) {
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both must be set", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 { // Grafana 11.0
		t.Errorf("schemaVersion %d: want a current Grafana's (>= 39)", d.SchemaVersion)
	}
	ds := d.variable("datasource")
	if ds == nil || ds.Type != "datasource" || strings.Trim(string(ds.Query), `"`) != "prometheus" {
		t.Errorf("want a datasource variable of type prometheus, have %+v", ds)
	}
	isVar := func(x *gfDatasource) bool { return x != nil && x.UID == "${datasource}" && x.Type == "prometheus" }
	for _, name := range []string{"route", "model", "job"} {
		v := d.variable(name)
		if v == nil {
			t.Errorf("no %s variable", name)
			continue
		}
		if v.Type != "query" || !isVar(v.Datasource) || !labelValuesQuery.MatchString(v.query()) {
			t.Errorf("variable %s: want a label_values query on ${datasource}, have type %q datasource %+v query %q", name, v.Type, v.Datasource, v.query())
		}
	}
	ids := map[int]string{}
	for _, p := range d.panels() {
		if p.ID <= 0 {
			t.Errorf("panel %q: id %d", p.Title, p.ID)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: gridPos %+v off the 24-column grid", p.ID, p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if !isVar(p.Datasource) {
			t.Errorf("panel %d %q: datasource %+v, want ${datasource}", p.ID, p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && !isVar(tg.Datasource) {
				t.Errorf("panel %d %q query %s: datasource %+v, want ${datasource}", p.ID, p.Title, tg.RefID, tg.Datasource)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %d %q: refId %q empty or repeated", p.ID, p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q query %s: empty expr", p.ID, p.Title, tg.RefID)
			}
		}
	}
	if len(ids) == 0 {
		t.Error("no panels")
	}
}

// scrapeText GETs a /metrics and returns its parsed families.
func scrapeText(t *testing.T, u, token string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", u, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return fams
}

// exportedNames are the series names of the scrapes as PromQL sees them:
// a histogram's _bucket, _sum and _count, a summary's _sum and _count.
func exportedNames(scrapes ...map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for _, fams := range scrapes {
		for n, f := range fams {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
			case dto.MetricType_SUMMARY:
				names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
			default:
				names[n] = true
			}
		}
	}
	return names
}

// PromQL words that are not metric names when they stand alone:
// keywords, and the aggregation operators (which may be followed by
// "by (...)" rather than "(").
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

// metricNames returns the metric names a PromQL expression reads: the
// identifiers outside strings, label matchers ({...}) and ranges ([...]),
// other than functions and aggregations (followed by "("), keywords, and
// the label lists of by, without, on, ignoring, group_left and
// group_right. It fails on what it cannot read (unbalanced brackets, an
// unterminated string, a string outside a matcher, a {__name__}
// selector).
func metricNames(expr string) ([]string, error) {
	var names []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	// closing finds the bracket closing the one at i, skipping strings.
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch expr[j] {
			case '"', '\'', '`':
				q := expr[j]
				j++
				for j < len(expr) && expr[j] != q {
					if expr[j] == '\\' && q != '`' {
						j++
					}
					j++
				}
				if j >= len(expr) {
					return 0, fmt.Errorf("unterminated string in %q", expr)
				}
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	parens := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '(' || c == ')':
			if c == '(' {
				parens++
			} else if parens--; parens < 0 {
				return nil, fmt.Errorf("unbalanced ) in %q", expr)
			}
			i++
		case c == '"' || c == '\'' || c == '`':
			return nil, fmt.Errorf("a string outside a label matcher (label_replace?) is not read: %q", expr)
		case c == '{':
			j, err := closing(i, '{', '}')
			if err != nil {
				return nil, err
			}
			if strings.Contains(expr[i:j], "__name__") {
				return nil, fmt.Errorf("a {__name__} selector hides its metric names: %q", expr)
			}
			i = j + 1
		case c == '[':
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j + 1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') { // 0.95, 1e3, 5m
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
				if next < len(expr) && expr[next] == '(' {
					k, err := closing(next, '(', ')')
					if err != nil {
						return nil, err
					}
					j = k + 1
				}
			case promqlKeywords[strings.ToLower(word)]:
			case next < len(expr) && expr[next] == '(':
				// a function or an aggregation
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	if parens != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

// prometheus is a Prometheus server run for one test, and one client for
// its API (a client per call would leave a connection open per call).
type prometheus struct {
	url    string
	client *http.Client
}

// poll evaluates cond every 100 ms until it holds or d passes.
func (p *prometheus) poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// startPrometheus runs bin scraping the gateway's admin port and the
// Resource every 500 ms into a temporary directory, until the test ends.
func startPrometheus(t *testing.T, bin, gatewayAdmin, resAddr, resToken string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 500ms
  scrape_timeout: 400ms
  evaluation_interval: 500ms
scrape_configs:
  - job_name: %s
    static_configs: [{targets: [%q]}]
  - job_name: %s
    authorization: {credentials_file: %q}
    static_configs: [{targets: [%q]}]
`, gatewayJob, gatewayAdmin, resourceJob, filepath.Join(dir, "token"), resAddr)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(resToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0",
		"--log.level=info")
	logs := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	// Prometheus logs the address it bound: msg="Listening on" address=127.0.0.1:PORT
	listening := regexp.MustCompile(`msg="Listening on" address=(\S+)`)
	var addr string
	waitFor(t, 20*time.Second, "prometheus to listen", func() bool {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	p := &prometheus{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}
	p.poll(t, 20*time.Second, "prometheus to be ready", func() bool {
		resp, err := p.client.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// api GETs a Prometheus HTTP API path and decodes its data; an answer
// other than success is an error carrying Prometheus's message.
func (p *prometheus) api(t *testing.T, path string, q url.Values, data any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.url+path+"?"+q.Encode(), nil)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %d, undecodable answer: %w", path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates expr now and returns its series (a scalar result as one
// series without labels).
func (p *prometheus) query(t *testing.T, expr string) ([]promSample, error) {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(t, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v []promSample
		return v, json.Unmarshal(data.Result, &v)
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(data.Result, &s); err != nil {
			return nil, err
		}
		return []promSample{{Value: s}}, nil
	}
	return nil, fmt.Errorf("result type %q, want an instant vector", data.ResultType)
}

// scalar evaluates expr and returns its first value (0, false when empty).
func (p *prometheus) scalar(t *testing.T, expr string) (float64, bool) {
	t.Helper()
	res, err := p.query(t, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if len(res) == 0 {
		return 0, false
	}
	s, _ := res[0].Value[1].(string)
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, false
	}
	return v, true
}

// resolveVariables resolves the dashboard's query variables in order, as
// Grafana does for label_values(selector, label): the label's values on
// the series the selector (its variables substituted) matches. Each must
// have values (one without is an error, and stands for its allValue so
// that the queries are still checked); the substitution of a variable is
// every value, as when a user picks them all.
func (p *prometheus) resolveVariables(t *testing.T, d *dashboard) map[string]string {
	t.Helper()
	vars := map[string]string{"__rate_interval": rateWindow}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesQuery.FindStringSubmatch(v.query())
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(selector, label)", v.Name, v.query())
		}
		sel := substitute(m[1], vars)
		var values []string
		if err := p.api(t, "/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {sel}}, &values); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		values = slices.DeleteFunc(values, func(s string) bool { return s == "" })
		if len(values) == 0 {
			// Still check the queries, with the variable's "All".
			t.Errorf("variable %s (%s) has no values", v.Name, sel)
			vars[v.Name] = strings.ReplaceAll(v.AllValue, `\`, `\\`)
			continue
		}
		quoted := make([]string, len(values))
		for i, s := range values {
			// A regex of the value, in a PromQL string: backslashes doubled.
			quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`)
		}
		vars[v.Name] = "(" + strings.Join(quoted, "|") + ")"
	}
	return vars
}

// substitute replaces $name and ${name} by vars[name], longest names
// first; unknown variables stay.
func substitute(expr string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vars[n])
		expr = strings.ReplaceAll(expr, "$"+n, vars[n])
	}
	return expr
}

// TestMetricNames: the tokenizer finds the metric names of the forms the
// dashboard uses and refuses what it cannot read.
func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want string // names joined by space, or "error"
	}{
		{`up`, "up"},
		{`sum by (route, code) (rate(switchyard_gateway_requests_total{job=~"$job", route=~"a|b"}[$__rate_interval]))`, "switchyard_gateway_requests_total"},
		{`histogram_quantile(0.95, sum by (class, le) (rate(q_bucket{x="}"}[1m])))`, "q_bucket"},
		{`(sum(rate(a_total{code="5xx"}[1m])) or vector(0)) / sum without (instance) (rate(a_total[5m] offset 1h))`, "a_total"},
		{`max(b) by (app) / on (app) group_left (state) c > bool 0.5e3`, "b c"},
		{`count by (job) (d{l='q\'uote'}) and e unless f`, "d e f"},
		{`process_open_fds / process_max_fds`, "process_max_fds process_open_fds"},
		{`sum(rate(x[1m])`, "error"},
		{`{__name__=~"a|b"}`, "error"},
		{`label_replace(up, "a", "$1", "b", "(.*)")`, "error"},
		{`a{b="c}`, "error"},
	} {
		got, err := metricNames(c.expr)
		s := strings.Join(got, " ")
		if err != nil {
			s = "error"
		}
		if s != c.want {
			t.Errorf("metricNames(%s) = %q (%v), want %q", c.expr, s, err, c.want)
		}
	}
}
