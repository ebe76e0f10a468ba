package chaos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/freeport"
	"github.com/switchyard-dev/switchyard/discovery"
)

// extra is a process a case starts for itself (a second gateway, an
// https engine, an agent, a Resource instance): started at once, stopped
// by stop. Its log is under logs/ like the others'.
func (t *topology) extra(name string, args ...string) (*proc, error) {
	return t.procs.start(name, args...)
}

// secondGateway writes a gateway config (listening at client, admin
// port admin) with its client listener on TLS when tlsListener, reading
// the tier over mTLS with tierCA as the CA it trusts, serving the
// engines' route and routes, and starts it.
func (t *topology) secondGateway(ctx context.Context, name, client, admin string, tlsListener bool, tierCA string, routes ...string) (*proc, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: {client: %s, admin: %s", client, admin)
	if tlsListener {
		fmt.Fprintf(&b, ", tls_cert: %s, tls_key: %s", t.pki.files["server"][0], t.pki.files["server"][1])
	}
	fmt.Fprintf(&b, `}
limits: {shutdown_timeout: 5s, drain_delay: -1s}
discovery:
  servers: [%s]
  token_file: %s
  tls: true
  ca_file: %s
  cert_file: %s
  key_file: %s
admin: {token_file: %s}
routes:
  - {name: %s, match: {models: [%s]}, app: %s}
`, strings.Join(resAddrs(t), ", "), filepath.Join(t.dir, "reader.token"), tierCA, t.pki.files["gateway"][0], t.pki.files["gateway"][1],
		filepath.Join(t.dir, "admin.token"), model, model, model)
	for _, r := range routes {
		b.WriteString("  - " + r + "\n")
	}
	file := filepath.Join(t.dir, name+".yaml")
	if err := writeFile(file, b.String()); err != nil {
		return nil, err
	}
	p, err := t.extra(name, "gateway", "--config", file, "--log-format", "json")
	if err != nil {
		return nil, err
	}
	if !waitUntil(ctx, 20*time.Second, func() bool { return !p.running() || t.status("http://"+admin+"/readyz", "") == 200 }) || !p.running() {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("chaos: %s did not come up; its log %s:\n%s", name, p.log, tail(p.log, 20))
	}
	return p, nil
}

// adminNodes returns a gateway's nodes of route by id, from its admin
// port.
func (t *topology) adminNodes(admin, route string) map[string]adminNode {
	var out struct{ Nodes []adminNode }
	m := map[string]adminNode{}
	if t.getJSON("http://"+admin+"/admin/nodes", "", &out) != nil {
		return m
	}
	for _, n := range out.Nodes {
		if n.Route == route {
			m[n.ID] = n
		}
	}
	return m
}

// handshake dials addr over TLS with conf and reports the error of the
// handshake and of a first read (TLS 1.3 servers refuse a client
// certificate after the client's handshake ended).
func handshake(addr string, conf *tls.Config) error {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	return nil
}

// caseTierMTLS (items 9, 11): the tier speaks mTLS only, and SAN
// identities bind credentials. Plaintext, no client certificate and a
// certificate of another CA are refused by every instance; the fixtures'
// agents are known by their certificate alone (their nodes are routed);
// a bound credential (token and SAN) announces with its certificate and
// is refused with another; over HTTP too, a reader known by its
// certificate reads and a bound agent announces.
func caseTierMTLS(ctx context.Context, t *topology, c *caseRun) {
	for _, r := range t.res {
		a := rawHTTP(r.addr, "GET /v1/apps/"+model+"/list HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+t.readerTok+"\r\n\r\n", 5*time.Second)
		label := "plaintext: closed"
		if a.status != 0 {
			label = fmt.Sprintf("plaintext: %d", a.status)
		}
		c.oneAs(label, a.status == 0 || a.status == 400, fmt.Sprintf("plaintext HTTP to %s: %d %q", r.name, a.status, a.body))
		err := handshake(r.addr, t.pki.clientTLS(""))
		c.oneAs("no client certificate: refused", err != nil, fmt.Sprintf("TLS without a client certificate to %s was served", r.name))
		rogue := t.pki.clientTLS("rogue")
		err = handshake(r.addr, rogue)
		c.oneAs("another CA's certificate: refused", err != nil, fmt.Sprintf("TLS with another CA's certificate to %s was served", r.name))
	}
	// The fixtures' agents: their certificate alone (no token).
	fixtures := 0
	for _, f := range []struct{ app, id string }{{probeApp, "probe-1"}, {loopApp, "loop-1"}} {
		ns, err := t.nodes(f.app)
		if c.check(err == nil && ns[f.id].eligible(), "%s (announced by an agent known by its certificate alone) not routable: %+v %v", f.id, ns[f.id], err) {
			fixtures++
		}
	}
	// Bound agents: token and certificate. b1 has both; b2 the token
	// with the harness's certificate.
	agentArgs := func(id, cert string) []string {
		return append([]string{"agent", "--servers", strings.Join(resAddrs(t), ","), "--token-file", "bound.token", "--id", id,
			"--app", limitedApp, "--addr", "http=" + t.rogue.addr, "--util", "0.1", "--concurrency", "1", "--control", "",
			"--drain-timeout", "1s", "--period", "500ms", "--log-format", "json"}, t.pki.tlsFlags(cert)...)
	}
	b1, err := t.extra("agent-b1", agentArgs("b1", "bound-agent")...)
	if !c.check(err == nil, "start agent b1: %v", err) {
		return
	}
	defer b1.stop(5 * time.Second)
	b2, err := t.extra("agent-b2", agentArgs("b2", "harness")...)
	if !c.check(err == nil, "start agent b2: %v", err) {
		return
	}
	defer b2.stop(5 * time.Second)
	began := time.Now()
	seen := waitUntil(ctx, 10*time.Second, func() bool { ns, err := t.nodes(limitedApp); return err == nil && ns["b1"].ID == "b1" })
	took := time.Since(began)
	c.oneAs("bound agent with its certificate: routed", seen, fmt.Sprintf("b1 (bound token and its certificate) did not reach the gateway in %.1f s", secs(took)))
	var refusedLine bool
	waitUntil(ctx, 5*time.Second, func() bool {
		b, _ := os.ReadFile(b2.log)
		refusedLine = strings.Contains(string(b), "bad_token")
		return refusedLine
	})
	ns, _ := t.nodes(limitedApp)
	_, b2In := ns["b2"]
	c.oneAs("bound token with another certificate: refused", !b2In && refusedLine, fmt.Sprintf("b2 (bound token, the harness's certificate): in the gateway %v, refusal in its log %v:\n%s", b2In, refusedLine, tail(b2.log, 3)))
	// Over HTTP (list reads, HTTP heartbeats, the agents' drain status).
	st := statusAs(t.as["gateway"], resURL(t.res[0].addr, "/v1/apps/"+model+"/list"), "")
	httpRead := st
	c.one(st, st == 200, fmt.Sprintf("HTTP list read by a reader known by its certificate alone (SAN %s): %d, want 200", sanGateway, st))
	rep := t.beat(t.res[0].addr, "bound-agent", t.boundTok, heartbeat("b3", limitedApp, t.rogue.addr, 1, discovery.StateOffline, uint64(time.Now().UnixNano()), 1))
	httpBeat := rep.status
	c.one(rep.status, rep.status == 204, fmt.Sprintf("HTTP heartbeat of a bound agent with its token and certificate: %d %s, want 204", rep.status, rep.Error))
	rep = t.beat(t.res[0].addr, "harness", t.boundTok, heartbeat("b3", limitedApp, t.rogue.addr, 1, discovery.StateOffline, uint64(time.Now().UnixNano()), 1))
	c.one(rep.status, rep.status == 401 && rep.Reason == "bad_token", fmt.Sprintf("HTTP heartbeat with the bound token and another certificate: %d %q, want 401 bad_token", rep.status, rep.Reason))
	b1.stop(5 * time.Second)
	b2.stop(5 * time.Second)
	c.check(waitUntil(ctx, 10*time.Second, func() bool { ns, err := t.nodes(limitedApp); return err == nil && len(ns) == 0 }), "b1 did not leave the gateway after its agent stopped")
	c.observe("of %d instances, plaintext refused by %d, a missing client certificate by %d, another CA's by %d; %d of 2 fixture nodes (agents known by their certificate alone) routed; the bound agent routed %v (%.1f s), the bound token with another certificate refused %v; over HTTP: list read by SAN %d, bound agent's beat %d",
		len(t.res), c.row.Answered["plaintext: closed"]+c.row.Answered["plaintext: 400"], c.row.Answered["no client certificate: refused"], c.row.Answered["another CA's certificate: refused"],
		fixtures, seen, secs(took), !b2In && refusedLine, httpRead, httpBeat)
}

// caseGatewayTierTLS (item 11): the gateway reads the tier over TLS
// (mTLS): its routes are current while the tier serves TLS only; a
// second gateway trusting another CA gets nothing from the tier (the
// instances' certificates are verified) and serves no engine.
func caseGatewayTierTLS(ctx context.Context, t *topology, c *caseRun) {
	stale, eligible := t.routeStale(model), t.eligibleEngines()
	c.check(!stale, "the gateway's route %s is stale", model)
	c.check(eligible == engines, "the gateway routes to %d of %d engines", eligible, engines)
	r := do(t.ctl, h1Buffered, "http://"+t.gw.addr+"/v1/chat/completions", chatBody(model, 1, false, ""), nil)
	c.one(r.status, r.outcome == outOK && r.status == 200, fmt.Sprintf("a request through the gateway: %s", r))
	addrs, err := freeport.Loopback(2)
	if !c.check(err == nil, "ports: %v", err) {
		return
	}
	gw2, err := t.secondGateway(ctx, "gateway-rogue-ca", addrs[0], addrs[1], false, t.pki.rogueCAFile)
	if !c.check(err == nil, "second gateway: %v", err) {
		return
	}
	defer gw2.stop(5 * time.Second)
	var certErr bool
	waitUntil(ctx, 10*time.Second, func() bool {
		b, _ := os.ReadFile(gw2.log)
		certErr = strings.Contains(string(b), "certificate")
		return certErr
	})
	c.check(certErr, "the gateway trusting another CA logged no certificate error:\n%s", tail(gw2.log, 5))
	h1, _ := clients("", 5*time.Second)
	defer h1.CloseIdleConnections()
	for range 3 {
		r := do(h1, h1Buffered, "http://"+addrs[0]+"/v1/chat/completions", chatBody(model, 1, false, ""), nil)
		c.one(r.status, r.status == 503 && r.node == "", fmt.Sprintf("a request through the gateway trusting another CA: %s, want 503 (no node)", r))
	}
	rogueNodes := len(t.adminNodes(addrs[1], model))
	c.check(rogueNodes == 0, "the gateway trusting another CA has nodes: %v", t.adminNodes(addrs[1], model))
	c.observe("the gateway's route stale %v, %d of %d engines routable, over mTLS; a gateway trusting another CA: certificate error logged %v, %d nodes, %d of 3 requests answered 503",
		stale, eligible, engines, certErr, rogueNodes, c.row.Answered["503"])
}

// caseTLSListener (issue 12: what held, TLS termination): a gateway
// whose client listener serves TLS (test CA) serves HTTP/1.1 and HTTP/2
// (ALPN) to clients that trust the CA; plaintext, h2c, TLS 1.1 and
// clients that do not trust it get nothing.
func caseTLSListener(ctx context.Context, t *topology, c *caseRun) {
	addrs, err := freeport.Loopback(2)
	if !c.check(err == nil, "ports: %v", err) {
		return
	}
	gw, err := t.secondGateway(ctx, "gateway-tls", addrs[0], addrs[1], true, t.pki.caFile)
	if !c.check(err == nil, "TLS gateway: %v", err) {
		return
	}
	defer gw.stop(5 * time.Second)
	c.check(waitUntil(ctx, 15*time.Second, func() bool {
		n := 0
		for _, x := range t.adminNodes(addrs[1], model) {
			if x.eligible() {
				n++
			}
		}
		return n == engines
	}), "the TLS gateway did not route to the %d engines", engines)
	l := startLoad(loadSpec{target: addrs[0], model: model, limit: time.Minute, tls: t.pki.clientTLS("")})
	c.check(l.waitOK(ctx, 200, 30*time.Second), "the load over TLS got too few answers")
	a := rawHTTP(addrs[0], postRaw("/v1/chat/completions", "gw", string(chatBody(model, 1, false, ""))), 5*time.Second)
	c.oneAs(fmt.Sprintf("plaintext: %d", a.status), a.status == 0 || a.status == 400, fmt.Sprintf("plaintext HTTP/1.1 to the TLS listener: %d", a.status))
	_, h2c := clients("", 5*time.Second)
	r := do(h2c, h2Buffered, "http://"+addrs[0]+"/v1/chat/completions", chatBody(model, 1, false, ""), nil)
	h2c.CloseIdleConnections()
	c.oneAs("h2c: no answer", r.outcome == outNoAnswer, fmt.Sprintf("h2c to the TLS listener: %s", r))
	old := t.pki.clientTLS("")
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	c.oneAs("TLS 1.1: refused", handshake(addrs[0], old) != nil, "a TLS 1.1 client was served")
	untrusting := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509PoolEmpty()}
	err = handshake(addrs[0], untrusting)
	c.oneAs("client not trusting the CA: refused", err != nil, "a client that does not trust the test CA completed the handshake")
	recs := l.finish()
	byProto := map[string]int{}
	c.account(recs, func(r record) (verdict, string) {
		v, label := strict(r)
		if v != answered {
			return v, label
		}
		want := 1
		if r.kind.h2() {
			want = 2
		}
		if !r.tls || r.proto != want {
			return wrong, ""
		}
		byProto[fmt.Sprintf("HTTP/%d", r.proto)]++
		return answered, ""
	})
	c.observe("over TLS: %d answers by HTTP/1.1, %d by HTTP/2 (ALPN); refused: plaintext %d, h2c %d, TLS 1.1 %d, a client not trusting the CA %d (of 1 each)", byProto["HTTP/1"], byProto["HTTP/2"],
		c.row.Answered["plaintext: 0"]+c.row.Answered["plaintext: 400"], c.row.Answered["h2c: no answer"], c.row.Answered["TLS 1.1: refused"], c.row.Answered["client not trusting the CA: refused"])
}

// caseHTTPSNode (item 11): an https:// engine (the simulated engine
// serving TLS with a certificate of the test CA) behind a static route
// with the CA bundle, reached through the TLS listener: served, health
// checked over TLS; the same node behind a route trusting another CA
// is never served (the node's certificate is verified).
func caseHTTPSNode(ctx context.Context, t *topology, c *caseRun) {
	addrs, err := freeport.Loopback(3)
	if !c.check(err == nil, "ports: %v", err) {
		return
	}
	node := addrs[2]
	s1, err := t.extra("s1", append([]string{"sim", "--listen", node, "--id", "s1", "--model", "secure", "--profile", "h100",
		"--prefill", "20ms", "--per-token", "5ms", "--max-tokens", "24", "--log-format", "json"}, "--tls-cert", t.pki.files["server"][0], "--tls-key", t.pki.files["server"][1])...)
	if !c.check(err == nil, "https engine: %v", err) {
		return
	}
	defer s1.stop(5 * time.Second)
	https := t.pki.client("")
	defer https.CloseIdleConnections()
	c.check(waitUntil(ctx, 10*time.Second, func() bool { return statusAs(https, "https://"+node+"/health", "") == 200 }), "the https engine did not come up:\n%s", tail(s1.log, 5))
	gw, err := t.secondGateway(ctx, "gateway-https", addrs[0], addrs[1], true, t.pki.caFile,
		fmt.Sprintf("{name: secure, match: {models: [secure]}, nodes: [\"https://%s\"], tls: {ca_file: %s}}", node, t.pki.caFile),
		fmt.Sprintf("{name: secure-rogue, match: {models: [secure-rogue]}, nodes: [\"https://%s\"], tls: {ca_file: %s}}", node, t.pki.rogueCAFile))
	if !c.check(err == nil, "TLS gateway: %v", err) {
		return
	}
	defer gw.stop(5 * time.Second)
	c.check(waitUntil(ctx, 10*time.Second, func() bool {
		return t.adminNodes(addrs[1], "secure")[node].eligible() || anyEligible(t.adminNodes(addrs[1], "secure"))
	}),
		"the https node is not routable: %+v", t.adminNodes(addrs[1], "secure"))
	l := startLoad(loadSpec{target: addrs[0], model: "secure", limit: time.Minute, tls: t.pki.clientTLS("")})
	c.check(l.waitOK(ctx, 150, 30*time.Second), "the load to the https node got too few answers")
	recs := l.finish()
	c.account(recs, func(r record) (verdict, string) {
		v, label := strict(r)
		if v == answered && r.node != "s1" {
			return wrong, ""
		}
		return v, label
	})
	var before simStats
	_ = getJSONWith(https, "https://"+node+"/_sim/stats", &before)
	h1, _ := clientsTLS("", 10*time.Second, t.pki.clientTLS(""))
	defer h1.CloseIdleConnections()
	for range 3 {
		r := do(h1, h1Buffered, "https://"+addrs[0]+"/v1/chat/completions", chatBody("secure-rogue", 1, false, ""), nil)
		c.one(r.status, r.status >= 500 && r.node == "", fmt.Sprintf("a request to the node behind a route trusting another CA: %s, want 5xx", r))
	}
	var after simStats
	err = getJSONWith(https, "https://"+node+"/_sim/stats", &after)
	c.check(err == nil && after.Served == before.Served, "the https node served %d requests through the route trusting another CA (%v)", after.Served-before.Served, err)
	rogue := t.adminNodes(addrs[1], "secure-rogue")
	c.observe("%d answers from the https node through the TLS listener (HTTP/1.1 and HTTP/2); behind a route trusting another CA it served nothing (node %v)", len(recs), rogueState(rogue))
}

func anyEligible(m map[string]adminNode) bool {
	for _, n := range m {
		if n.eligible() {
			return true
		}
	}
	return false
}

func rogueState(m map[string]adminNode) []string {
	var out []string
	for _, n := range m {
		out = append(out, fmt.Sprintf("%s %s %v breaker %s", n.ID, n.State, n.Excluded, n.Breaker))
	}
	return out
}

// getJSONWith GETs url with cl into v.
func getJSONWith(cl *http.Client, url string, v any) error {
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return jsonDecode(resp, v)
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// x509PoolEmpty is a pool that trusts nothing.
func x509PoolEmpty() *x509.CertPool { return x509.NewCertPool() }
