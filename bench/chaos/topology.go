package chaos

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/freeport"
)

// The topology's names: the app and model the simulated engines serve,
// and the apps of the fixtures.
const (
	model      = "llama" // app, route and model of the five engines
	probeApp   = "probe" // one recorder engine (what the engine saw)
	loopApp    = "loop"  // one node whose address is the gateway itself
	limitedApp = "limited"
	forbidApp  = "qwen" // an app no credential may announce
	engines    = 5
	resources  = 3
)

// member is one role of the topology: its fixed address and arguments,
// and its current process (restarts keep the address).
type member struct {
	name string
	addr string
	args []string
	p    *proc
}

// topology is the system under test, all on loopback: three peered
// Resource instances with a credentials file, five simulated engines each
// with its agent, two fixture nodes (a recorder and the routing loop)
// announced by agents too, and the gateway, fed by discovery.
type topology struct {
	cfg   Config
	dir   string
	procs *procs
	ctl   *http.Client // control requests: admin port, sims, Resource (as the harness: its certificate)
	pki   *pki         // the test CA and every TLS identity
	// as holds a client per TLS identity of the pki (the harness's own
	// is ctl; "" presents no certificate).
	as map[string]*http.Client

	res    []*member // Resource instances r1..r3
	sims   []*member // engines e1..e5
	agents []*member // their agents
	fixAg  []*member // agents of the recorder and of the loop node
	gw     *member   // the gateway; addr is the client address
	admin  string    // the gateway's admin address

	recorder *recorder // the probe app's engine
	rogue    *recorder // where forged nodes point: must see nothing

	// Secrets (the credentials file holds their SHA-256).
	agentTok, limitTok, boundTok, readerTok, peerTok, adminTok string
	gwConfig                                                   string // path of the gateway's YAML
	// llamaRoute is extra YAML for the engines' route (", key: value"),
	// set by a case for its reload; "" normally.
	llamaRoute string
	// drainCtl is the control address of the agent of engine
	// drainVictim (the others have none).
	drainCtl string
}

// drainVictim is the engine whose agent has a control API (caseAgentDrain).
const drainVictim = 2

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// newTopology writes the files and starts every process; on error it
// stops what it started.
func newTopology(ctx context.Context, cfg Config, dir, runID string) (*topology, error) {
	ca, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	t := &topology{
		cfg: cfg, dir: dir, pki: ca,
		procs:    &procs{bin: cfg.Bin, dir: dir, runID: runID},
		ctl:      ca.client("harness"),
		as:       map[string]*http.Client{},
		agentTok: "agent-" + token(), limitTok: "limit-" + token(), boundTok: "bound-" + token(), readerTok: "reader-" + token(),
		peerTok: "peer-" + token(), adminTok: "admin-" + token(),
	}
	for _, id := range []string{"llama-agent", "fixture-agent", "bound-agent", "gateway", "rogue", ""} {
		t.as[id] = ca.client(id)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, err
	}
	if err := t.start(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *topology) logf(format string, args ...any) {
	fmt.Fprintf(t.cfg.Log, format+"\n", args...)
}

func (t *topology) start(ctx context.Context) error {
	addrs, err := freeport.Loopback(resources + engines + 3)
	if err != nil {
		return err
	}
	resAddrs, simAddrs := addrs[:resources], addrs[resources:resources+engines]
	gwAddr, adminAddr := addrs[resources+engines], addrs[resources+engines+1]
	t.admin, t.drainCtl = adminAddr, addrs[resources+engines+2]
	if t.recorder, err = startRecorder("probe-1"); err != nil {
		return err
	}
	if t.rogue, err = startRecorder("rogue"); err != nil {
		return err
	}

	// Secrets and the credentials file. The whole tier speaks mTLS:
	// every client presents a certificate of the test CA. Agents of the
	// engines (a token) may only announce app llama, node ids e*,
	// loopback addresses, capacity ≤ 8; the fixtures' agents (their
	// certificate's SAN alone) the fixture apps; bound agents (a token
	// and a SAN, both needed) and the limit credential (a token) app
	// limited, which holds 2 nodes. Readers: the gateway and the harness
	// (a token), and a reader by certificate alone (caseTierTLS).
	files := map[string]string{
		"agent.token": t.agentTok, "bound.token": t.boundTok, "reader.token": t.readerTok,
		"peer.token": t.peerTok, "admin.token": t.adminTok,
		"credentials.yaml": fmt.Sprintf(`agents:
  - name: llama-agents
    token_sha256: %s
    apps: [%s]
    node_prefixes: [e]
    cidrs: [127.0.0.0/8]
  - name: fixture-agents
    tls_san: [%s]
    apps: [%s, %s]
    cidrs: [127.0.0.0/8]
  - name: bound-agents
    token_sha256: %s
    tls_san: [%s]
    apps: [%s]
    node_prefixes: [b]
    cidrs: [127.0.0.0/8]
  - name: limit
    token_sha256: %s
    apps: [%s, "lim-*"]
peers:
  - name: tier
    token_sha256: %s
readers:
  - name: gateways
    token_sha256: %s
  - name: readers-by-certificate
    tls_san: [%s]
apps:
  %s: {max_capacity: 8}
  %s: {max_nodes: 2}
`, sha(t.agentTok), model, sanFixtureAgent, probeApp, loopApp, sha(t.boundTok), sanBoundAgent, limitedApp, sha(t.limitTok), limitedApp,
			sha(t.peerTok), sha(t.readerTok), sanGateway, model, limitedApp),
	}
	for name, content := range files {
		if err := writeFile(filepath.Join(t.dir, name), content); err != nil {
			return err
		}
	}
	t.gwConfig = filepath.Join(t.dir, "gateway.yaml")
	if err := writeFile(t.gwConfig, t.gatewayYAML(gwAddr, adminAddr, resAddrs, false)); err != nil {
		return err
	}

	peers := strings.Join(resAddrs, ",")
	for i, a := range resAddrs {
		t.res = append(t.res, &member{name: fmt.Sprintf("r%d", i+1), addr: a, args: append([]string{"resource",
			"--listen", a, "--peers", peers, "--credentials", "credentials.yaml", "--peer-token-file", "peer.token",
			"--log-format", "json"}, t.pki.tlsFlags("server")...)})
	}
	for i, a := range simAddrs {
		id := fmt.Sprintf("e%d", i+1)
		t.sims = append(t.sims, &member{name: id, addr: a, args: []string{"sim",
			"--listen", a, "--id", id, "--model", model, "--profile", "h100",
			"--prefill", "20ms", "--per-token", "5ms", "--max-tokens", "24", "--log-format", "json"}})
		// Each agent starts with another instance first, so the nodes
		// spread over the tier.
		order := slices.Concat(resAddrs[i%resources:], resAddrs[:i%resources])
		control := ""
		if i == drainVictim {
			control = t.drainCtl
		}
		t.agents = append(t.agents, &member{name: "agent-" + id, addr: a, args: append([]string{"agent",
			"--servers", strings.Join(order, ","), "--token-file", "agent.token", "--id", id, "--app", model,
			"--addr", "http=" + a, "--engine", "vllm", "--load", "probe", "--metrics-url", "http://" + a + "/metrics",
			"--control", control, "--drain-timeout", "5s", "--log-format", "json"}, t.pki.tlsFlags("llama-agent")...)})
	}
	fixture := func(name, app, addr string, extra ...string) *member {
		return &member{name: "agent-" + name, addr: addr, args: append(append([]string{"agent",
			"--servers", peers, "--id", name, "--app", app,
			"--addr", "http=" + addr, "--util", "0.1", "--concurrency", "1"}, extra...),
			append([]string{"--control", "", "--drain-timeout", "2s", "--log-format", "json"}, t.pki.tlsFlags("fixture-agent")...)...)}
	}
	t.fixAg = []*member{fixture("probe-1", probeApp, t.recorder.addr, "--addr", "grpc="+t.recorder.addr), fixture("loop-1", loopApp, gwAddr)}
	t.gw = &member{name: "gateway", addr: gwAddr, args: []string{"gateway", "--config", "gateway.yaml", "--log-format", "json"}}

	t.logf("topology in %s: Resource %v, engines %v, gateway %s (admin %s)", t.dir, resAddrs, simAddrs, gwAddr, adminAddr)
	for _, m := range t.res {
		if err := t.run(ctx, m); err != nil {
			return err
		}
	}
	for _, m := range t.sims {
		if err := t.run(ctx, m); err != nil {
			return err
		}
	}
	for _, m := range slices.Concat(t.agents, t.fixAg, []*member{t.gw}) {
		if err := t.run(ctx, m); err != nil {
			return err
		}
	}
	return t.settle(ctx, 60*time.Second)
}

// gatewayYAML is the gateway's configuration. Limits are set where a case
// needs a bound it can reach on this machine; everything else (health
// checks, outlier detection, breakers, retries, timeouts) is the default.
func (t *topology) gatewayYAML(client, admin string, res []string, reloadRoute bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# The chaos suite's gateway (bench/chaos): routes fed by discovery.
listen: {client: %s, admin: %s}
limits:
  max_concurrent: %d
  read_timeout: %s
  max_body_bytes: %d
  max_buffered_bytes: %d
  max_connections: %d
  max_connections_per_ip: %d
  shutdown_timeout: 20s
  drain_delay: %s
discovery:
  servers: [%s]
  token_file: %s
  tls: true
  ca_file: %s
  cert_file: %s
  key_file: %s
admin:
  token_file: %s
routes:
  - {name: %s, match: {models: [%s]}, app: %s%s}
  - {name: %s, match: {models: [%s]}, app: %s}
  - {name: %s, match: {models: [%s]}, app: %s}
  - {name: %s, match: {models: [%s]}, app: %s}
  - {name: %s, match: {models: [%s]}, app: %s}
`, client, admin, maxConcurrent, readTimeout, maxBodyBytes, maxBuffered, maxConnections, maxConnsPerIP, drainDelay,
		strings.Join(res, ", "), filepath.Join(t.dir, "reader.token"), t.pki.caFile, t.pki.files["gateway"][0], t.pki.files["gateway"][1], filepath.Join(t.dir, "admin.token"),
		model, model, model, t.llamaRoute, probeApp, probeApp, probeApp, loopApp, loopApp, loopApp,
		limitedApp, limitedApp, limitedApp, forbidApp, forbidApp, forbidApp)
	if reloadRoute { // a second route to the recorder, which answers any model
		fmt.Fprintf(&b, "  - {name: %s, match: {models: [%s]}, app: %s}\n", reloadModel, reloadModel, probeApp)
	}
	return b.String()
}

// The gateway's limits (gatewayYAML).
const (
	maxConcurrent  = 400
	readTimeout    = 3 * time.Second
	maxBodyBytes   = 16 << 20
	maxBuffered    = 32 << 20
	maxConnections = 300
	maxConnsPerIP  = 64
	reloadModel    = "reloaded"  // the route a SIGHUP reload adds (to the recorder)
	drainDelay     = time.Second // SIGTERM: served on (Connection: close) this long, then the listener closes
)

// resURL is the URL of path on a Resource instance (the tier speaks
// TLS only).
func resURL(addr, path string) string { return "https://" + addr + path }

// run starts m's process and waits until it serves.
func (t *topology) run(ctx context.Context, m *member) error {
	p, err := t.procs.start(m.name, m.args...)
	if err != nil {
		return err
	}
	m.p = p
	var check func() bool
	switch {
	case strings.HasPrefix(m.name, "r"):
		check = func() bool { return t.status(resURL(m.addr, "/healthz"), "") == 200 }
	case strings.HasPrefix(m.name, "e"):
		check = func() bool { return t.status("http://"+m.addr+"/health", "") == 200 }
	case m == t.gw:
		check = func() bool { return t.status("http://"+t.admin+"/readyz", "") == 200 }
	default: // agents: nothing to ask; they are checked by settle
		return nil
	}
	if !waitUntil(ctx, 20*time.Second, func() bool { return !p.running() || check() }) || !p.running() {
		return fmt.Errorf("chaos: %s did not come up (running %v); its log %s:\n%s", m.name, p.running(), p.log, tail(p.log, 20))
	}
	return nil
}

// restart starts m again (after a kill) at the same address.
func (t *topology) restart(ctx context.Context, m *member) error {
	if m.p != nil && m.p.running() {
		if err := m.p.kill9(); err != nil {
			return err
		}
	}
	return t.run(ctx, m)
}

// status GETs url (with a bearer token if tok is set) and returns the
// status code, 0 when there was no answer.
func (t *topology) status(url, tok string) int { return statusAs(t.ctl, url, tok) }

// statusAs is status with client cl.
func statusAs(cl *http.Client, url, tok string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// getJSON GETs url into v.
func (t *topology) getJSON(url, tok string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := t.ctl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// post POSTs body to url and returns the status code and body.
func (t *topology) post(url, body string) (int, string, error) {
	resp, err := t.ctl.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// simControl POSTs a control request (/_sim/...) straight to engine i.
func (t *topology) simControl(i int, op string) error {
	code, body, err := t.post("http://"+t.sims[i].addr+"/_sim/"+op, "")
	if err != nil {
		return fmt.Errorf("chaos: %s /_sim/%s: %w", t.sims[i].name, op, err)
	}
	if code != 200 && code != 202 {
		return fmt.Errorf("chaos: %s /_sim/%s: %d %s", t.sims[i].name, op, code, body)
	}
	return nil
}

// simStats are the counters of an engine (engines/sim.Stats).
type simStats struct {
	Served, Rejected, Errors, Cut int64
	Running, Waiting              int64
	GeneratedTokens               int64 `json:"generated_tokens"`
	Mode                          string
	Slowdown                      float64
	Draining                      bool
}

func (t *topology) simStats(i int) (simStats, error) {
	var s simStats
	err := t.getJSON("http://"+t.sims[i].addr+"/_sim/stats", "", &s)
	return s, err
}

// adminNode is a node as the gateway's /admin/nodes shows it.
type adminNode struct {
	Route    string   `json:"route"`
	ID       string   `json:"id"`
	HTTP     string   `json:"http"`
	State    string   `json:"state"`
	Weight   float64  `json:"weight"`
	InFlight int64    `json:"in_flight"`
	Breaker  string   `json:"breaker"`
	Excluded []string `json:"excluded"`
}

// eligible: the gateway may pick it.
func (n adminNode) eligible() bool { return n.State == "ready" && len(n.Excluded) == 0 }

// allNodes returns the gateway's nodes of every route.
func (t *topology) allNodes() ([]adminNode, error) {
	var out struct{ Nodes []adminNode }
	err := t.getJSON("http://"+t.admin+"/admin/nodes", "", &out)
	return out.Nodes, err
}

// nodes returns the gateway's nodes of route, by id.
func (t *topology) nodes(route string) (map[string]adminNode, error) {
	all, err := t.allNodes()
	if err != nil {
		return nil, err
	}
	m := map[string]adminNode{}
	for _, n := range all {
		if n.Route == route {
			m[n.ID] = n
		}
	}
	return m, nil
}

// eligibleEngines is how many of e1..e5 the gateway may pick now (-1 when
// the admin port does not answer).
func (t *topology) eligibleEngines() int {
	ns, err := t.nodes(model)
	if err != nil {
		return -1
	}
	n := 0
	for _, m := range t.sims {
		if x, ok := ns[m.name]; ok && x.eligible() {
			n++
		}
	}
	return n
}

// settle waits until every process runs and the gateway may pick every
// engine and the recorder, with closed breakers.
func (t *topology) settle(ctx context.Context, d time.Duration) error {
	var why, first string
	begin := time.Now()
	defer func() {
		if time.Since(begin) > 2*time.Second && first != "" {
			t.logf("settle: waited %.1f s, at first for: %s", time.Since(begin).Seconds(), first)
		}
	}()
	ok := waitUntil(ctx, d, func() bool {
		if first == "" && why != "" && time.Since(begin) > time.Second {
			first = why
		}
		for _, m := range slices.Concat(t.res, t.sims, t.agents, t.fixAg, []*member{t.gw}) {
			if m.p == nil || !m.p.running() {
				why = m.name + " is not running"
				return false
			}
		}
		ns, err := t.nodes(model)
		if err != nil {
			why = "gateway admin: " + err.Error()
			return false
		}
		for _, m := range t.sims {
			n, ok := ns[m.name]
			if !ok || !n.eligible() || n.Breaker != "closed" {
				why = fmt.Sprintf("engine %s: %+v (present %v)", m.name, n, ok)
				return false
			}
		}
		if ps, err := t.nodes(probeApp); err != nil || !ps["probe-1"].eligible() {
			why = "the recorder is not routable yet"
			return false
		}
		return true
	})
	if !ok {
		return fmt.Errorf("chaos: the topology did not settle within %v: %s", d, why)
	}
	return nil
}

// heal undoes whatever a case left: dead processes restarted, stopped
// ones continued, engines back to healthy; then settle.
func (t *topology) heal(ctx context.Context) error {
	for _, m := range slices.Concat(t.res, t.sims) {
		if m.p != nil && m.p.running() {
			_ = m.p.signal(syscall.SIGCONT)
			continue
		}
		t.logf("heal: restarting %s", m.name)
		if err := t.restart(ctx, m); err != nil {
			return err
		}
	}
	for i := range t.sims {
		for _, op := range []string{"fail?mode=healthy", "error-rate?p=0", "slowdown?factor=1", "undrain"} {
			if err := t.simControl(i, op); err != nil {
				return err
			}
		}
	}
	for _, m := range slices.Concat(t.agents, t.fixAg, []*member{t.gw}) {
		if m.p == nil || !m.p.running() {
			t.logf("heal: restarting %s", m.name)
			if err := t.restart(ctx, m); err != nil {
				return err
			}
		}
	}
	return t.settle(ctx, 60*time.Second)
}

// close stops everything the topology started: the agents first, while
// the gateway can still acknowledge their drain, then the gateway, the
// engines and the tier; then anything left.
func (t *topology) close() {
	for _, group := range [][]*member{slices.Concat(t.agents, t.fixAg), {t.gw}, slices.Concat(t.sims, t.res)} {
		var wg sync.WaitGroup
		for _, m := range group {
			if m != nil && m.p != nil {
				wg.Go(func() { m.p.stop(5 * time.Second) })
			}
		}
		wg.Wait()
	}
	t.procs.stopAll(5 * time.Second)
	if t.recorder != nil {
		t.recorder.close()
	}
	if t.rogue != nil {
		t.rogue.close()
	}
	t.ctl.CloseIdleConnections()
	for _, cl := range t.as {
		cl.CloseIdleConnections()
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exclusion is one "node excluded" record of the gateway's log.
type exclusion struct {
	Time                        time.Time
	Route, Node, Reason, Detail string
}

// exclusions returns the gateway's exclusions (health checks and
// outlier detection) logged between from and to, over all its runs.
func (t *topology) exclusions(from, to time.Time) []exclusion {
	var out []exclusion
	t.procs.mu.Lock()
	var logs []string
	for _, q := range t.procs.all {
		if q.name == t.gw.name {
			logs = append(logs, q.log)
		}
	}
	t.procs.mu.Unlock()
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `"msg":"gateway: node excluded"`) {
				continue
			}
			var e exclusion
			if json.Unmarshal([]byte(line), &e) == nil && !e.Time.Before(from) && !e.Time.After(to) {
				out = append(out, e)
			}
		}
	}
	return out
}
