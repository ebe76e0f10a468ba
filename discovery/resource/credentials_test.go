package resource_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

func sha(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// goWords are what the YAML decoder says in Go: type names, tags.
var goWords = regexp.MustCompile(`\bresource\.[A-Z]|\[\]string|!!(int|str|seq|map)|float64|unmarshal|not found in type`)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"plaintext token", "agents:\n  - name: a\n    token: s3cret\n    apps: [x]\n", `line 3: unknown field "token" in agents[0] (store the token's SHA-256 as token_sha256`},
		{"unknown top-level", "agent:\n  - name: a\n", `line 1: unknown field "agent" in the file`},
		{"agent without apps", "agents:\n  - name: a\n    token_sha256: " + sha("t") + "\n", "agents[0].apps: an agent credential must name the apps"},
		{"bad hash", "agents:\n  - name: a\n    token_sha256: abc\n    apps: [x]\n", "agents[0].token_sha256: want 64 hex digits"},
		{"no identity", "readers:\n  - name: r\n", "readers[0]: needs token_sha256 or tls_san"},
		{"duplicate name", "readers:\n  - {name: r, tls_san: [a]}\n  - {name: r, tls_san: [b]}\n", `readers[1]: name "r" is used twice`},
		{"duplicate token", "readers:\n  - {name: r, token_sha256: " + sha("t") + "}\npeers:\n  - {name: p, token_sha256: " + sha("t") + "}\n", `readers[0]: token_sha256 is also "p"'s`},
		{"peer with apps", "peers:\n  - {name: p, token_sha256: " + sha("t") + ", apps: [x]}\n", "a peer credential has no apps"},
		{"bad cidr", "agents:\n  - {name: a, tls_san: [x], apps: [x], cidrs: [10.0.0.0/33]}\n", `agents[0].cidrs: "10.0.0.0/33"`},
		{"bad cap", "apps:\n  x: {max_capacity: -1}\n", "apps.x.max_capacity: -1"},
		{"wrong shape", "apps: [1, 2]\n", "line 1: apps: want a mapping (name: value), got a list"},
		{"scalar for a list", "agents:\n  - {name: a, tls_san: [x], apps: x}\n", `line 2: agents[0].apps: want a list, e.g. [x], got "x"`},
		{"word for a number", "apps:\n  x: {max_nodes: many}\n", `line 2: apps.x.max_nodes: want a whole number, got "many"`},
		{"unknown cap key", "apps:\n  x: {max_capacty: 1}\n", `line 2: unknown field "max_capacty" in apps.x`},
		{"ok", "agents:\n  - {name: a, token_sha256: " + sha("t") + ", apps: [\"team-*\"], node_prefixes: [n-], cidrs: [10.0.0.0/8]}\nreaders:\n  - {name: r, tls_san: [gw.example]}\napps:\n  x: {max_capacity: 8, max_nodes: 3}\ndefault_app: {max_capacity: 100}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resource.ParseCredentials([]byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if goWords.MatchString(err.Error()) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows a Go type name or the secret: %v", err)
			}
		})
	}
}

const (
	agentTok  = "agent-token-llama"
	readerTok = "reader-token"
	peerTok   = "peer-token"
)

// scopedFile writes a credentials file for app "llama" (agent bound to
// node ids "llama-" and loopback addresses, capacity capped at 8).
func scopedFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials.yaml")
	writeFile(t, path, fmt.Sprintf(`agents:
  - name: llama-fleet
    token_sha256: %s
    apps: [llama]
    node_prefixes: [llama-]
    cidrs: [127.0.0.0/8]
  - name: cert-agent
    tls_san: [agent-cert]
    apps: [llama]
peers:
  - name: tier
    token_sha256: %s
readers:
  - name: gateways
    token_sha256: %s
apps:
  llama: {max_capacity: 8}
`, sha(agentTok), sha(peerTok), sha(readerTok)))
	return path
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // atomic, as a secret mount swaps
		t.Fatal(err)
	}
}

// rawAgent opens a framed agent connection with tok.
func rawAgent(t *testing.T, addr, tok string) (net.Conn, *bufio.Reader, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	_, err = discovery.Handshake(c, br, discovery.CurrentVersion, discovery.Hello{Role: discovery.RoleAgent, Token: tok})
	return c, br, err
}

// beatAndWait sends hb and returns the Reject it caused, or nil when it
// was acknowledged.
func beatAndWait(t *testing.T, c net.Conn, br *bufio.Reader, hb discovery.Heartbeat) *discovery.Reject {
	t.Helper()
	if _, err := c.Write(discovery.AppendHeartbeatFrame(nil, &hb, discovery.CurrentVersion)); err != nil {
		t.Fatal(err)
	}
	for {
		typ, p, _, err := discovery.ReadFrame(br, discovery.MaxAgentFrame, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case discovery.FrameAck:
			if seq, _ := discovery.DecodeUvarint(p, "seq"); seq == hb.Seq {
				return nil
			}
		case discovery.FrameReject:
			r, err := discovery.DecodeReject(p, discovery.CurrentVersion)
			if err != nil {
				t.Fatal(err)
			}
			return &r
		}
	}
}

// TestScopedCredentials (issue 12, item 9): with a credentials file, an
// agent credential announces only nodes of its apps, with its node id
// prefixes and addresses, within the app's capacity cap; readers only
// read, agents only beat, peers only link; every refusal names its reason
// and field. The shared token keeps full access (quick start).
func TestScopedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 2)
	servers := addrs(lns)
	file := scopedFile(t)
	var insts []*instance
	for _, ln := range lns {
		cfg := resource.Config{CredentialsFile: file, PeerToken: peerTok, Token: "shared-quick-start", Peers: servers, Logger: quiet}
		insts = append(insts, startInstance(t, ln, cfg))
	}
	// A reader on the second instance sees what agents announce on the
	// first: the peer link works with the peer credential.
	w := startWatcher(t, servers[1:], "llama", func(c *discovery.ClientConfig) { c.Token = readerTok })

	c, br, err := rawAgent(t, servers[0], agentTok)
	if err != nil {
		t.Fatal(err)
	}
	good := discovery.Heartbeat{ID: "llama-1", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:8000"}, Capacity: 8,
		State: discovery.StateReady, Incarnation: 1}
	seq := uint64(0)
	send := func(mod func(*discovery.Heartbeat)) *discovery.Reject {
		hb := good
		hb.Addresses = map[string]string{"http": "127.0.0.1:8000"}
		mod(&hb)
		seq++
		hb.Seq = seq
		return beatAndWait(t, c, br, hb)
	}
	if r := send(func(*discovery.Heartbeat) {}); r != nil {
		t.Fatalf("a node within the binding: %+v", r)
	}
	forged := []struct {
		name, field string
		mod         func(*discovery.Heartbeat)
	}{
		{"another app", "app", func(h *discovery.Heartbeat) { h.App, h.ID = "qwen", "llama-2" }},
		{"another node id", "id", func(h *discovery.Heartbeat) { h.ID = "evil-1" }},
		{"an address outside the CIDRs", "addresses.http", func(h *discovery.Heartbeat) { h.ID, h.Addresses["http"] = "llama-3", "10.9.9.9:8000" }},
		{"a host name (CIDRs need IPs)", "addresses.http", func(h *discovery.Heartbeat) { h.ID, h.Addresses["http"] = "llama-3", "evil.example:8000" }},
		{"capacity above the cap", "capacity", func(h *discovery.Heartbeat) { h.ID, h.Capacity = "llama-4", 26 }},
	}
	for _, f := range forged {
		r := send(f.mod)
		if r == nil || r.Reason != discovery.ReasonForbidden || r.Field != f.field || !(strings.Contains(r.Problem, "llama-fleet") || strings.Contains(r.Problem, "max_capacity")) {
			t.Errorf("%s: %+v", f.name, r)
		}
	}
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return eligible(l, "llama-1") }); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	if n := len(w.last.Nodes); n != 1 {
		t.Errorf("forged nodes were listed: %d nodes", n)
	}
	w.mu.Unlock()

	// Roles: a reader cannot beat, an agent cannot read, a peer cannot
	// read, an unknown token is refused; each answer says why.
	if _, _, err := rawAgent(t, servers[0], readerTok); !errors.Is(err, discovery.ErrForbidden) || !strings.Contains(err.Error(), "reader credential") {
		t.Errorf("reader beating: %v", err)
	}
	if _, _, err := rawAgent(t, servers[0], "made-up"); !errors.Is(err, discovery.ErrBadToken) {
		t.Errorf("unknown token: %v", err)
	}
	get := func(tok, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+servers[0]+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		who, tok, path string
		code           int
		reason         string
	}{
		{"agent reading", agentTok, "/v1/apps/llama/list", 403, "forbidden"},
		{"peer reading", peerTok, "/v1/apps/llama/list", 403, "forbidden"},
		{"unknown token", "made-up", "/v1/apps/llama/list", 401, "bad_token"},
		{"no token", "", "/v1/apps/llama/list", 401, "bad_token"},
		{"agent asking drain of another app", agentTok, "/v1/apps/qwen/drain?node=x", 403, "forbidden"},
		{"reader", readerTok, "/v1/apps/llama/list", 200, ""},
		{"agent asking its drain", agentTok, "/v1/apps/llama/drain?node=llama-1", 200, ""},
		{"shared token (full access)", "shared-quick-start", "/v1/apps/llama/list", 200, ""},
	} {
		code, body := get(tc.tok, tc.path)
		if code != tc.code || (tc.reason != "" && !strings.Contains(body, `"reason":"`+tc.reason+`"`)) {
			t.Errorf("%s: %d %s", tc.who, code, body)
		}
		for _, secret := range []string{agentTok, readerTok, peerTok} {
			if strings.Contains(body, secret) {
				t.Errorf("%s: the answer shows a token", tc.who)
			}
		}
	}
	// A real agent with the reader's credential is refused at once and
	// says why.
	cfg := agentConfig(servers[:1], "llama", "llama-9", 9009)
	cfg.Token = readerTok
	ta := startAgent(t, cfg)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(ta.a.LastReject(), "forbidden") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the agent's own report, bounded
	}
	if !strings.Contains(ta.a.LastReject(), "reader credential") {
		t.Errorf("agent with a reader credential: last reject %q", ta.a.LastReject())
	}
	if insts[0].srv.Rejections().Count(discovery.ReasonForbidden) < 8 {
		t.Errorf("forbidden refusals not counted: %d", insts[0].srv.Rejections().Count(discovery.ReasonForbidden))
	}
}

// TestCertificateIdentity: a verified client certificate's SAN identifies
// a credential without a token (mTLS); an unknown identity is refused.
func TestCertificateIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool, _, leaf := testPKI(t)
	lns := listenAll(t, 1)
	servers := addrs(lns)
	cfg := resource.Config{CredentialsFile: scopedFile(t), Logger: quiet,
		TLS: &tls.Config{Certificates: []tls.Certificate{leaf("resource", true)}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	startInstance(t, lns[0], cfg)
	good := agentConfig(servers, "llama", "cert-node", 9100)
	good.Token = ""
	good.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{leaf("agent-cert", false)}, MinVersion: tls.VersionTLS12}
	startAgent(t, good)
	bad := agentConfig(servers, "llama", "stranger", 9101)
	bad.Token = ""
	bad.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{leaf("stranger", false)}, MinVersion: tls.VersionTLS12}
	stranger := startAgent(t, bad)
	w := startWatcher(t, servers, "llama", func(c *discovery.ClientConfig) {
		c.Token = readerTok
		c.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{leaf("gateway", false)}, MinVersion: tls.VersionTLS12}
	})
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return eligible(l, "cert-node") }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stranger.a.LastReject() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the agent's own report, bounded
	}
	if r := stranger.a.LastReject(); !strings.Contains(r, "bad_token") || !strings.Contains(r, "stranger") {
		t.Fatalf("unknown certificate identity: last reject %q", r)
	}
	w.mu.Lock()
	if listed(&w.last, "stranger") {
		w.mu.Unlock()
		t.Fatal("a node with an unknown certificate identity was listed")
	}
	w.mu.Unlock()
	// The same identities over HTTP (the JSON heartbeat): the sniffer
	// hands HTTP connections on wrapped, and their certificate must still
	// count.
	post := func(cn string) int {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{leaf(cn, false)}, MinVersion: tls.VersionTLS12}}}
		defer c.CloseIdleConnections()
		hb := discovery.Heartbeat{ID: "cert-node-http", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:9102"},
			Capacity: 1, State: discovery.StateReady, Incarnation: 1, Seq: 1}
		body, _ := json.Marshal(hb)
		resp, err := c.Post("https://"+servers[0]+"/v1/heartbeat", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("agent-cert"); code/100 != 2 {
		t.Errorf("HTTP heartbeat with the agent's certificate: %d, want 2xx", code)
	}
	if code := post("stranger"); code != http.StatusUnauthorized {
		t.Errorf("HTTP heartbeat with an unknown certificate: %d, want 401", code)
	}
}

// TestCredentialsReload: the file is re-read when it changes; a revoked
// agent credential's connection is closed and its beats refused; an
// invalid new file is refused and the running credentials stay.
func TestCredentialsReload(t *testing.T) {
	lns := listenAll(t, 1)
	file := scopedFile(t)
	in := startInstance(t, lns[0], resource.Config{CredentialsFile: file, CredentialsPoll: 20 * time.Millisecond, Logger: quiet})
	c, br, err := rawAgent(t, in.addr, agentTok)
	if err != nil {
		t.Fatal(err)
	}
	hb := discovery.Heartbeat{ID: "llama-1", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:8000"}, State: discovery.StateReady, Incarnation: 1, Seq: 1}
	if r := beatAndWait(t, c, br, hb); r != nil {
		t.Fatal(r)
	}
	// An invalid edit is refused; the agent keeps working.
	writeFile(t, file, "agents:\n  - name: llama-fleet\n    token: "+agentTok+"\n")
	if err := in.srv.ReloadCredentials(); err == nil || strings.Contains(err.Error(), agentTok) {
		t.Fatalf("invalid file: %v", err)
	}
	hb.Seq = 2
	if r := beatAndWait(t, c, br, hb); r != nil {
		t.Fatalf("after a refused reload: %+v", r)
	}
	// Revoke the agent (only a reader left): picked up by polling.
	writeFile(t, file, "readers:\n  - {name: gateways, token_sha256: "+sha(readerTok)+"}\n")
	deadline := time.Now().Add(5 * time.Second)
	var r *discovery.Reject
	for r == nil && time.Now().Before(deadline) {
		hb.Seq++
		r = beatAndWait(t, c, br, hb)
		if r == nil {
			time.Sleep(20 * time.Millisecond) // the next poll of the file
		}
	}
	if r == nil || r.Reason != discovery.ReasonBadToken {
		t.Fatalf("revoked credential: %+v", r)
	}
	if _, _, _, err := discovery.ReadFrame(br, discovery.MaxAgentFrame, nil); err == nil {
		t.Fatal("the revoked connection stays open")
	}
	if _, _, err := rawAgent(t, in.addr, agentTok); !errors.Is(err, discovery.ErrBadToken) {
		t.Fatalf("new connection with a revoked token: %v", err)
	}
}

// TestReadmeCredentialsExample: the example in discovery/README.md parses.
func TestReadmeCredentialsExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Credentials")
	if !ok {
		t.Fatal("no Credentials section")
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no YAML example")
	}
	f, err := resource.ParseCredentials([]byte(example))
	if err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	if len(f.Agents) != 2 || len(f.Peers) != 1 || len(f.Readers) != 1 || f.Agents[0].TokenSHA256 != sha("example-agent-token") {
		t.Fatalf("parsed %+v", f)
	}
}
