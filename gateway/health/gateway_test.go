package health_test

// Whole-gateway tests of issue 12, item 3: real gateways on loopback in
// front of simulated engines (engines/sim), and of real engine processes
// (this test binary re-executed as a simulated engine) that are sent
// SIGSTOP, the way an engine hangs: its kernel still completes TCP
// handshakes, nothing answers. Times are measured from the fault to the
// timestamp of the gateway's "node excluded" log record.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway"
)

// helperEnv makes the test binary a simulated engine (see TestMain).
const helperEnv = "SWITCHYARD_HEALTH_TEST_ENGINE"

// The requirement: a hung engine leaves the route within 5 s.
const within = 5 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runEngine())
	}
	os.Exit(m.Run())
}

// fastProfile makes the simulated engines answer in about 15 ms.
var fastProfile = sim.Profile{Prefill: 5 * time.Millisecond, PerToken: 2 * time.Millisecond, MaxTokens: 4}

// runEngine serves one simulated engine, prints its address and runs
// until its stdin closes (the test ended) or it is killed.
func runEngine() int {
	n, err := sim.Start(context.Background(), sim.Config{ID: os.Getenv("SIM_ID"), Model: "m", Profile: "h100", Override: fastProfile})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(n.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = n.Close()
	return 0
}

// engineProc is a simulated engine in its own process.
type engineProc struct {
	cmd  *exec.Cmd
	addr string
}

func startEngineProc(t *testing.T, id string) *engineProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "SIM_ID="+id)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("engine process printed nothing")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &engineProc{cmd: cmd, addr: strings.TrimSpace(sc.Text())}
}

func startSim(t *testing.T, id string) *sim.Node {
	t.Helper()
	n, err := sim.Start(context.Background(), sim.Config{ID: id, Model: "m", Profile: "h100", Override: fastProfile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// logRecorder keeps the gateway's log records.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
	ch   chan struct{}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
	return nil
}

func attr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// all returns the records with msg about node (any node when "").
func (l *logRecorder) all(msg, node string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.recs {
		if r.Message == msg && (node == "" || attr(r, "node") == node) {
			out = append(out, r)
		}
	}
	return out
}

// wait returns the first record with msg about node logged at or after
// since, waiting for it until ctx ends.
func (l *logRecorder) wait(ctx context.Context, t *testing.T, msg, node string, since time.Time) slog.Record {
	t.Helper()
	for {
		for _, r := range l.all(msg, node) {
			if !r.Time.Before(since) {
				return r
			}
		}
		select {
		case <-l.ch:
		case <-ctx.Done():
			t.Fatalf("no %q for node %q: %v\n%s", msg, node, ctx.Err(), l.dump())
		}
	}
}

func (l *logRecorder) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.recs {
		if r.Level < slog.LevelInfo {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String()); return true })
		b.WriteByte('\n')
	}
	return b.String()
}

// testGateway is a gateway serving one static route "m" on loopback.
type testGateway struct {
	url, admin string
	log        *logRecorder
}

// nodeSpec is a static node: its id and HTTP address.
type nodeSpec struct{ id, addr string }

// startGateway serves a route over nodes with the default configuration,
// edited by edit (nil for none). Only the shutdown is shortened: requests
// hung on a stopped engine would hold it for 30 s.
func startGateway(t *testing.T, nodes []nodeSpec, edit func(*gateway.RouteConfig)) *testGateway {
	t.Helper()
	rc := gateway.RouteConfig{Name: "m", Match: gateway.MatchConfig{Models: []string{"m"}}}
	for _, n := range nodes {
		rc.Nodes = append(rc.Nodes, gateway.NodeConfig{ID: n.id, HTTP: n.addr})
	}
	if edit != nil {
		edit(&rc)
	}
	return serveGateway(t, &gateway.Config{Routes: []gateway.RouteConfig{rc}})
}

// serveGateway serves cfg on loopback until the test ends.
func serveGateway(t *testing.T, cfg *gateway.Config) *testGateway {
	t.Helper()
	cfg.Limits.ShutdownTimeout = time.Second
	cfg.Limits.DrainDelay = -1 // stop at once
	rec := &logRecorder{ch: make(chan struct{}, 1)}
	g, err := gateway.New(cfg, gateway.WithLogger(slog.New(rec)))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, cl, al) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return")
		}
	})
	return &testGateway{url: "http://" + cl.Addr().String(), admin: "http://" + al.Addr().String(), log: rec}
}

// adminNode is /admin/nodes' view of a node.
type adminNode struct {
	ID       string       `json:"id"`
	Weight   float64      `json:"weight"`
	InFlight int64        `json:"in_flight"`
	Excluded []string     `json:"excluded"`
	Health   *adminHealth `json:"health"`
}

// adminHealth is what /admin/nodes says of a node's health (the fields
// these tests read).
type adminHealth struct {
	Watch            string     `json:"watch"`
	Check            string     `json:"check"`
	Rule             string     `json:"rule"`
	NoHealthEndpoint string     `json:"no_health_endpoint"`
	LastProbe        string     `json:"last_probe"`
	Ejected          bool       `json:"ejected"`
	EjectedUntil     *time.Time `json:"ejected_until"`
	Held             bool       `json:"held"`
}

func (g *testGateway) nodes(t *testing.T) map[string]adminNode {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(g.admin + "/admin/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Nodes []adminNode }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]adminNode{}
	for _, n := range body.Nodes {
		out[n.ID] = n
	}
	return out
}

// metrics is the admin port's Prometheus exposition.
func (g *testGateway) metrics(t *testing.T) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(g.admin + "/metrics")
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

// load keeps workers sending chat completions until stop; served counts
// the answers of each node (by the X-Sim-Node header).
type load struct {
	stop   func()
	mu     sync.Mutex
	served map[string]int
	ok     atomic.Int64
}

func (l *load) count(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.served[node]
}

// startLoad runs workers, each request bounded by 10 s (a request that
// reached a hung engine waits that long; the others go on).
func startLoad(t *testing.T, url string, workers int) *load {
	t.Helper()
	l := &load{served: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				req, _ := http.NewRequestWithContext(rctx, http.MethodPost, url+"/v1/chat/completions",
					strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":4}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						l.ok.Add(1)
						l.mu.Lock()
						l.served[resp.Header.Get(sim.NodeHeader)]++
						l.mu.Unlock()
					}
				}
				rcancel()
			}
		}()
	}
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(l.stop)
	return l
}

// waitLoad waits until the load got n more answers than it had.
func waitLoad(ctx context.Context, t *testing.T, l *load, n int64, what string) {
	t.Helper()
	target := l.ok.Load() + n
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for l.ok.Load() < target {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: only %d answers: %v", what, l.ok.Load(), ctx.Err())
		}
	}
}

// TestHungSimLeavesStaticRoute: with the default configuration (no
// health path configured anywhere), a simulated engine that starts to
// hang under load — accepting everything, answering nothing, its health
// endpoint included — is out of a static route's picks within 5 s, while
// requests hang on it; once it recovers it is back and serves again.
func TestHungSimLeavesStaticRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, c := startSim(t, "a"), startSim(t, "b"), startSim(t, "c")
	g := startGateway(t, []nodeSpec{{"a", a.Addr()}, {"b", b.Addr()}, {"c", c.Addr()}}, nil)
	l := startLoad(t, g.url, 16)
	waitLoad(ctx, t, l, 300, "load before the hang")

	hungAt := time.Now()
	c.Fail(sim.ModeHang)
	out := g.log.wait(ctx, t, "gateway: node excluded", "c", hungAt)
	took := out.Time.Sub(hungAt)
	t.Logf("hang → excluded after %v (reason %s: %s)", took.Round(time.Millisecond), attr(out, "reason"), attr(out, "detail"))
	if took > within {
		t.Fatalf("the hung node left the route after %v, want at most %v", took, within)
	}
	if n := g.nodes(t)["c"]; n.InFlight == 0 || !contains(n.Excluded, "health") {
		t.Fatalf("at exclusion, want requests hung on the node and the health exclusion: %+v", n)
	}
	for _, id := range []string{"a", "b"} {
		if len(g.log.all("gateway: node excluded", id)) > 0 {
			t.Fatalf("healthy node %s was excluded\n%s", id, g.log.dump())
		}
	}
	// The metrics say so too.
	m := g.metrics(t)
	for _, want := range []string{
		`switchyard_gateway_node_exclusions_total{node="c",reason="` + attr(out, "reason") + `",route="m"} 1`,
		`switchyard_gateway_node_health_excluded{node="c",route="m"} 1`,
		`switchyard_gateway_node_health_excluded{node="a",route="m"} 0`,
		`switchyard_gateway_health_checks_total{node="a",result="healthy",route="m"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	waitLoad(ctx, t, l, 300, "load while the node is out")

	backAt := time.Now()
	c.Fail(sim.ModeHealthy)
	back := g.log.wait(ctx, t, "gateway: node back", "c", backAt)
	t.Logf("recovered → back after %v (%s)", back.Time.Sub(backAt).Round(time.Millisecond), attr(back, "reason"))
	waitServed(ctx, t, g, l, "c", 20)
}

// waitServed waits until node has served n more answers of l.
func waitServed(ctx context.Context, t *testing.T, g *testGateway, l *load, node string, n int) {
	t.Helper()
	before := l.count(node)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for l.count(node) < before+n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			b, _ := json.MarshalIndent(g.nodes(t), "", "  ")
			t.Fatalf("node %s served %d answers since, want %d (load: %d answers)\n%s\n%s", node, l.count(node)-before, n, l.ok.Load(), g.log.dump(), b)
		}
	}
}

// TestSIGSTOPEngineLeavesRoute: a real engine process is stopped with
// SIGSTOP under load (its kernel keeps accepting connections) and is out
// of the route within 5 s; after SIGCONT it is back and serves again.
func TestSIGSTOPEngineLeavesRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("runs engine processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p1, p2 := startEngineProc(t, "p1"), startEngineProc(t, "p2")
	s := startSim(t, "s")
	g := startGateway(t, []nodeSpec{{"p1", p1.addr}, {"p2", p2.addr}, {"s", s.Addr()}}, nil)
	l := startLoad(t, g.url, 16)
	waitLoad(ctx, t, l, 300, "load before SIGSTOP")
	if l.count("p1") == 0 {
		t.Fatal("p1 served nothing before the stop")
	}

	stoppedAt := time.Now()
	if err := p1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out := g.log.wait(ctx, t, "gateway: node excluded", "p1", stoppedAt)
	took := out.Time.Sub(stoppedAt)
	t.Logf("SIGSTOP → excluded after %v (reason %s: %s)", took.Round(time.Millisecond), attr(out, "reason"), attr(out, "detail"))
	if took > within {
		t.Fatalf("the stopped engine left the route after %v, want at most %v", took, within)
	}
	waitLoad(ctx, t, l, 300, "load while p1 is stopped")

	contAt := time.Now()
	if err := p1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := g.log.wait(ctx, t, "gateway: node back", "p1", contAt)
	t.Logf("SIGCONT → back after %v (%s)", back.Time.Sub(contAt).Round(time.Millisecond), attr(back, "reason"))
	waitServed(ctx, t, g, l, "p1", 20)
	for _, id := range []string{"p2", "s"} {
		if len(g.log.all("gateway: node excluded", id)) > 0 {
			t.Fatalf("healthy node %s was excluded\n%s", id, g.log.dump())
		}
	}
}

// TestNoHealthEndpointWatchedByOutliers: nodes whose health path answers
// 404 are never excluded for it — /admin/nodes says they are watched by
// outlier detection alone — and one that hangs under load is ejected as a
// latency outlier within 5 s all the same.
func TestNoHealthEndpointWatchedByOutliers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b, c := startSim(t, "a"), startSim(t, "b"), startSim(t, "c")
	g := startGateway(t, []nodeSpec{{"a", a.Addr()}, {"b", b.Addr()}, {"c", c.Addr()}}, func(rc *gateway.RouteConfig) {
		rc.HealthCheck.Path = "/no-such-health"
	})
	l := startLoad(t, g.url, 16)
	// Every node probed at least once and found without a health endpoint.
	for {
		ns, all := g.nodes(t), true
		for _, id := range []string{"a", "b", "c"} {
			h := ns[id].Health
			all = all && h != nil && h.Watch == "outliers only" && h.NoHealthEndpoint == "404 on /no-such-health"
		}
		if all {
			break
		}
		waitLoad(ctx, t, l, 20, "the first probes")
	}
	waitLoad(ctx, t, l, 300, "load before the hang")
	if out := g.log.all("gateway: node excluded", ""); len(out) > 0 {
		t.Fatalf("a node was excluded for lacking a health endpoint\n%s", g.log.dump())
	}

	hungAt := time.Now()
	c.Fail(sim.ModeHang)
	out := g.log.wait(ctx, t, "gateway: node excluded", "c", hungAt)
	took := out.Time.Sub(hungAt)
	t.Logf("hang → ejected after %v (reason %s: %s)", took.Round(time.Millisecond), attr(out, "reason"), attr(out, "detail"))
	if attr(out, "reason") != "latency" || took > within {
		t.Fatalf("ejected for %q after %v, want as a latency outlier within %v", attr(out, "reason"), took, within)
	}
	// The checker logs the ejection before it publishes its status: the
	// admin view may lag the log line by one publish.
	for h := g.nodes(t)["c"].Health; h == nil || !h.Ejected || h.EjectedUntil == nil; h = g.nodes(t)["c"].Health {
		if time.Since(out.Time) > 5*time.Second {
			t.Fatalf("admin view of the ejected node: %+v", h)
		}
		waitLoad(ctx, t, l, 20, "the ejection in the admin view")
	}
	c.Fail(sim.ModeHealthy) // release the hung requests before the gateway stops
}

// TestMaxEjectionPercentHolds: four nodes watched by outlier detection
// alone, three of them hang under load: two are ejected (50 %), the third
// stays in and is reported capped.
func TestMaxEjectionPercentHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sims []*sim.Node
	var specs []nodeSpec
	for _, id := range []string{"a", "b", "c", "d"} {
		n := startSim(t, id)
		sims = append(sims, n)
		specs = append(specs, nodeSpec{id, n.Addr()})
	}
	g := startGateway(t, specs, func(rc *gateway.RouteConfig) { rc.HealthCheck.Disable = true })
	l := startLoad(t, g.url, 24)
	waitLoad(ctx, t, l, 300, "load before the hang")
	hungAt := time.Now()
	for _, n := range sims[1:] {
		n.Fail(sim.ModeHang)
	}
	capped := g.log.wait(ctx, t, "gateway: outlier kept in: max_ejection_percent reached", "", hungAt)
	t.Logf("capped: node %s (%s)", attr(capped, "node"), attr(capped, "detail"))
	ejected := map[string]bool{}
	for _, r := range g.log.all("gateway: node excluded", "") {
		ejected[attr(r, "node")] = true
	}
	if len(ejected) != 2 || ejected["a"] || ejected[attr(capped, "node")] {
		t.Fatalf("ejected %v, capped %s: want two of the three hung nodes out, the third capped\n%s", ejected, attr(capped, "node"), g.log.dump())
	}
	ns := g.nodes(t)
	out := 0
	for _, id := range []string{"b", "c", "d"} {
		if contains(ns[id].Excluded, "health") {
			out++
		}
	}
	if out != 2 || contains(ns["a"].Excluded, "health") {
		t.Fatalf("admin: %d hung nodes excluded, want 2 (%+v)", out, ns)
	}
	for _, n := range sims[1:] {
		n.Fail(sim.ModeHealthy)
	}
}

// TestLastNodeIsKept: when both nodes of a route hang, the health checks
// exclude one and keep the other, the last node that could take requests.
func TestLastNodeIsKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startSim(t, "a"), startSim(t, "b")
	g := startGateway(t, []nodeSpec{{"a", a.Addr()}, {"b", b.Addr()}}, nil)
	hungAt := time.Now()
	a.Fail(sim.ModeHang)
	b.Fail(sim.ModeHang)
	kept := g.log.wait(ctx, t, "gateway: node failing but kept: it is the last node that can take requests", "", hungAt)
	out := g.log.all("gateway: node excluded", "")
	if len(out) != 1 || attr(out[0], "node") == attr(kept, "node") {
		t.Fatalf("excluded %d, kept %s\n%s", len(out), attr(kept, "node"), g.log.dump())
	}
	// The checker logs the hold before it publishes its status: the admin
	// view may lag the log line by one publish. Its exclusion bit (never
	// set while held) is read from the table and must be clear throughout.
	id := attr(kept, "node")
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := g.nodes(t)[id]
		if contains(n.Excluded, "health") {
			t.Fatalf("kept node %s is excluded: %+v, health %+v", id, n, n.Health)
		}
		if n.Health != nil && n.Health.Held {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("kept node %s not held in the admin view: %+v, health %+v: %v", id, n, n.Health, ctx.Err())
		}
	}
	a.Fail(sim.ModeHealthy)
	b.Fail(sim.ModeHealthy)
}

// TestBusyNodeNotExcluded: a node whose health endpoint is too slow to
// answer while it serves requests is busy, not hung, and stays in; once
// it serves nothing, the same slow health endpoint takes it out.
func TestBusyNodeNotExcluded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startSim(t, "a")
	release := make(chan struct{})
	slow := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			select { // slower than the 500 ms probe timeout
			case <-time.After(2 * time.Second):
			case <-release:
			}
			return
		}
		w.Header().Set(sim.NodeHeader, "slow")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[]}`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = slow.Serve(ln) }()
	t.Cleanup(func() { close(release); _ = slow.Close() })
	g := startGateway(t, []nodeSpec{{"a", a.Addr()}, {"slow", ln.Addr().String()}}, nil)
	l := startLoad(t, g.url, 8)
	// Three probes in a row time out while the node serves: all busy.
	for {
		h := g.nodes(t)["slow"].Health
		if h != nil && strings.HasPrefix(h.LastProbe, "busy") {
			break
		}
		waitLoad(ctx, t, l, 20, "a busy probe")
	}
	for range 3 {
		waitLoad(ctx, t, l, 500, "load")
	}
	if out := g.log.all("gateway: node excluded", "slow"); len(out) > 0 {
		t.Fatalf("a busy node was excluded\n%s", g.log.dump())
	}
	stopped := time.Now()
	l.stop()
	out := g.log.wait(ctx, t, "gateway: node excluded", "slow", stopped)
	t.Logf("idle with a slow health endpoint → excluded after %v: %s", out.Time.Sub(stopped).Round(time.Millisecond), attr(out, "detail"))
}

// TestHungEngineLeavesDiscoveryRoute: the same on a route fed by a real
// Resource instance, whose nodes' agents say they run Triton: the probe
// takes Triton's readiness path, the default dynamic policy weighs the
// nodes, the hung node's agent goes on reporting it busy, and it is out
// within 5 s; its weight does not rise afterwards.
func TestHungEngineLeavesDiscoveryRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "tok", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { acancel(); wg.Wait() })
	wg.Go(func() { _ = srv.Serve(actx, ln) })
	sims := map[string]*sim.Node{}
	for _, id := range []string{"a", "b", "c"} {
		n := startSim(t, id)
		sims[id] = n
		ag, err := agent.New(agent.Config{Servers: []string{ln.Addr().String()}, Token: "tok", NodeID: id, App: "m",
			Addresses: map[string]string{"http": n.Addr()}, Engine: "triton", Capacity: 1, Period: 200 * time.Millisecond,
			Load: agent.StaticLoad{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(4)}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = ag.Run(actx) })
	}
	cfg := &gateway.Config{Routes: []gateway.RouteConfig{{Name: "m", Match: gateway.MatchConfig{Models: []string{"m"}}}},
		Discovery: &gateway.DiscoveryConfig{Servers: []string{ln.Addr().String()}, Token: "tok"}}
	g := serveGateway(t, cfg)
	for {
		ns, all := g.nodes(t), len(g.nodes(t)) == 3
		for _, n := range ns {
			all = all && n.Health != nil && n.Health.Rule == "node engine triton" && strings.HasSuffix(n.Health.Check, "/v2/health/ready") && n.Health.LastProbe == "ok"
		}
		if all {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nodes not discovered and probed: %+v", ns)
		case <-time.After(20 * time.Millisecond):
		}
	}
	l := startLoad(t, g.url, 16)
	waitLoad(ctx, t, l, 300, "load before the hang")
	hungAt := time.Now()
	sims["c"].Fail(sim.ModeHang)
	out := g.log.wait(ctx, t, "gateway: node excluded", "c", hungAt)
	took := out.Time.Sub(hungAt)
	t.Logf("hang → excluded after %v (reason %s: %s)", took.Round(time.Millisecond), attr(out, "reason"), attr(out, "detail"))
	if took > within {
		t.Fatalf("the hung node left the route after %v, want at most %v", took, within)
	}
	// Two weight periods (3 s each) later its weight has not risen,
	// though the route's nodes are in their slow start, whose ramp the
	// others follow. (The table built across the hang may still have
	// raised it: the node had completed requests since the one before.)
	weight := g.nodes(t)["c"].Weight
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end); {
		waitLoad(ctx, t, l, 100, "load while the node is out")
	}
	ns := g.nodes(t)
	t.Logf("weights: excluded node %.3f at exclusion, %.3f 7 s later; others %.3f %.3f", weight, ns["c"].Weight, ns["a"].Weight, ns["b"].Weight)
	if w := ns["c"].Weight; w > weight {
		t.Fatalf("the excluded node's weight rose from %v to %v", weight, w)
	}
	sims["c"].Fail(sim.ModeHealthy)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
