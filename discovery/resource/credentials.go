package resource

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/discovery"

	"github.com/switchyard-dev/switchyard/internal/yamlerr"
)

// CredentialsFile is the YAML file of scoped credentials (issue 12, item
// 9): separate credentials for agents, peers and readers (gateways), an
// agent's bound to the apps, node ids and addresses it may announce, and
// per-app caps. Tokens are stored as SHA-256 hex digests, so the file holds
// no secret (`printf %s "$TOKEN" | sha256sum`).
//
//	agents:
//	  - name: llama-fleet                  # shown in logs, never the token
//	    token_sha256: 9f86d081884c7d65...  # and/or tls_san
//	    tls_san: [agent.llm.svc]           # a verified client certificate's SAN (DNS, URI, IP or e-mail)
//	    apps: [llama-3-70b, "team-a-*"]    # required: "*" any app, "prefix*" a prefix
//	    node_prefixes: [llama-]            # optional: node ids must start with one
//	    cidrs: [10.0.0.0/8]                # optional: every address must be an IP inside one
//	peers:
//	  - name: tier
//	    token_sha256: ...
//	readers:
//	  - name: gateways
//	    tls_san: [gateway.llm.svc]
//	    apps: ["*"]                        # optional; default every app
//	apps:
//	  llama-3-70b: {max_capacity: 64, max_nodes: 500}
//	default_app: {max_capacity: 1000}      # apps not listed
//
// An entry with both token_sha256 and tls_san needs both; with tls_san
// only, the verified certificate alone identifies it (mTLS). The shared
// token of Config.Token, when set, still grants full access.
type CredentialsFile struct {
	Agents     []CredentialEntry    `yaml:"agents"`
	Peers      []CredentialEntry    `yaml:"peers"`
	Readers    []CredentialEntry    `yaml:"readers"`
	Apps       map[string]AppLimits `yaml:"apps"`
	DefaultApp AppLimits            `yaml:"default_app"`
}

// CredentialEntry is one credential of a CredentialsFile.
type CredentialEntry struct {
	Name         string   `yaml:"name"`
	TokenSHA256  string   `yaml:"token_sha256"`
	TLSSAN       []string `yaml:"tls_san"`
	Apps         []string `yaml:"apps"`
	NodePrefixes []string `yaml:"node_prefixes"`
	CIDRs        []string `yaml:"cidrs"`
}

// AppLimits are one app's caps.
type AppLimits struct {
	// MaxCapacity is the largest capacity one node of the app may declare
	// (0: no cap). A heartbeat above it is refused (forbidden, field
	// capacity): a forged node cannot claim most of the traffic.
	MaxCapacity float64 `yaml:"max_capacity"`
	// MaxNodes overrides Config.MaxNodesPerApp for the app (0: keep it).
	MaxNodes int `yaml:"max_nodes"`
}

// role is what a credential may do.
type role uint8

const (
	roleAgent  role = iota + 1 // announce nodes of its apps, ask their drain status
	rolePeer                   // link as a peer, answer drain fan-outs
	roleReader                 // read lists of its apps, acknowledge, ask drain status
	roleFull                   // everything (the shared token, or no authentication)
)

var roleNames = map[role]string{roleAgent: "agent", rolePeer: "peer", roleReader: "reader", roleFull: "full-access"}

// credential is one resolved credential. Immutable; a reload builds new
// ones (records remember the credential that last authorised them by
// pointer, see record.auth).
type credential struct {
	name     string
	role     role
	apps     []string // patterns; nil = every app
	prefixes []string
	cidrs    []netip.Prefix
	sans     []string // required TLS identities (any one)
}

// trusted is the credential of this instance's own changes, of the open
// mode (no authentication configured) and of tests; nobody may do nothing.
var (
	trusted = &credential{name: "internal", role: roleFull}
	nobody  = &credential{name: "nobody", apps: []string{}}
)

// credSet is the credentials in force. Immutable; swapped on reload.
type credSet struct {
	open   bool // no shared token and no file: authentication disabled
	byHash map[[sha256.Size]byte]*credential
	bySAN  map[string]*credential // entries identified by certificate alone
	apps   map[string]AppLimits
	def    AppLimits
	gen    uint64
}

// newCredSet builds the credentials in force from the shared token and the
// file's contents (nil: none).
func newCredSet(shared string, f *CredentialsFile, gen uint64) (*credSet, error) {
	cs := &credSet{byHash: map[[sha256.Size]byte]*credential{}, bySAN: map[string]*credential{}, apps: map[string]AppLimits{}, gen: gen}
	if shared == "" && f == nil {
		cs.open = true
		return cs, nil
	}
	if shared != "" {
		cs.byHash[sha256.Sum256([]byte(shared))] = &credential{name: "shared-token", role: roleFull}
	}
	if f == nil {
		return cs, nil
	}
	names := map[string]bool{}
	add := func(section string, r role, entries []CredentialEntry) error {
		for i, e := range entries {
			where := fmt.Sprintf("%s[%d]", section, i)
			c, hash, err := e.build(where, r)
			if err != nil {
				return err
			}
			if names[c.name] {
				return fmt.Errorf("credentials: %s: name %q is used twice", where, c.name)
			}
			names[c.name] = true
			if hash != nil {
				if old, dup := cs.byHash[*hash]; dup {
					if old.role == roleFull {
						return fmt.Errorf("credentials: %s: its token is the shared token (which grants full access)", where)
					}
					return fmt.Errorf("credentials: %s: token_sha256 is also %q's", where, old.name)
				}
				cs.byHash[*hash] = c
				continue
			}
			for _, san := range c.sans {
				if old, dup := cs.bySAN[san]; dup {
					return fmt.Errorf("credentials: %s: tls_san %q also identifies %q", where, san, old.name)
				}
				cs.bySAN[san] = c
			}
		}
		return nil
	}
	if err := errors.Join(add("agents", roleAgent, f.Agents), add("peers", rolePeer, f.Peers), add("readers", roleReader, f.Readers)); err != nil {
		return nil, err
	}
	for name, l := range f.Apps {
		if err := checkPattern(name, false); err != nil {
			return nil, fmt.Errorf("credentials: apps: %w", err)
		}
		if err := l.check("apps." + name); err != nil {
			return nil, err
		}
		cs.apps[name] = l
	}
	if err := f.DefaultApp.check("default_app"); err != nil {
		return nil, err
	}
	cs.def = f.DefaultApp
	return cs, nil
}

func (l AppLimits) check(where string) error {
	switch {
	case l.MaxCapacity < 0 || l.MaxCapacity > discovery.MaxCapacity:
		return fmt.Errorf("credentials: %s.max_capacity: %g, want 0..%g", where, l.MaxCapacity, float64(discovery.MaxCapacity))
	case l.MaxNodes < 0:
		return fmt.Errorf("credentials: %s.max_nodes: %d, want >= 0", where, l.MaxNodes)
	}
	return nil
}

// build checks one entry and returns its credential and token hash (nil
// for a certificate-only entry).
func (e *CredentialEntry) build(where string, r role) (*credential, *[sha256.Size]byte, error) {
	if err := checkPattern(e.Name, false); err != nil {
		return nil, nil, fmt.Errorf("credentials: %s.name: %w", where, err)
	}
	c := &credential{name: e.Name, role: r, sans: slices.Clone(e.TLSSAN), prefixes: slices.Clone(e.NodePrefixes)}
	var hash *[sha256.Size]byte
	if e.TokenSHA256 != "" {
		b, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, nil, fmt.Errorf("credentials: %s.token_sha256: want 64 hex digits (the SHA-256 of the token: printf %%s \"$TOKEN\" | sha256sum)", where)
		}
		hash = (*[sha256.Size]byte)(b)
	}
	if hash == nil && len(c.sans) == 0 {
		return nil, nil, fmt.Errorf("credentials: %s: needs token_sha256 or tls_san", where)
	}
	for _, san := range c.sans {
		if san == "" || strings.ContainsAny(san, " \t\n") {
			return nil, nil, fmt.Errorf("credentials: %s.tls_san: %q is not a name", where, san)
		}
	}
	switch r {
	case roleAgent:
		if len(e.Apps) == 0 {
			return nil, nil, fmt.Errorf("credentials: %s.apps: an agent credential must name the apps it may announce (\"*\" for any)", where)
		}
	case rolePeer:
		if len(e.Apps)+len(e.NodePrefixes)+len(e.CIDRs) > 0 {
			return nil, nil, fmt.Errorf("credentials: %s: a peer credential has no apps, node_prefixes or cidrs (peers relay every app)", where)
		}
	case roleReader:
		if len(e.NodePrefixes)+len(e.CIDRs) > 0 {
			return nil, nil, fmt.Errorf("credentials: %s: a reader credential has no node_prefixes or cidrs", where)
		}
	}
	for _, p := range e.Apps {
		if err := checkPattern(p, true); err != nil {
			return nil, nil, fmt.Errorf("credentials: %s.apps: %w", where, err)
		}
	}
	if !slices.Contains(e.Apps, "*") {
		c.apps = slices.Clone(e.Apps) // nil (every app) for a reader without apps
	}
	for _, p := range c.prefixes {
		if err := checkPattern(p, false); err != nil {
			return nil, nil, fmt.Errorf("credentials: %s.node_prefixes: %w", where, err)
		}
	}
	for _, s := range e.CIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, fmt.Errorf("credentials: %s.cidrs: %q: %w", where, s, err)
		}
		c.cidrs = append(c.cidrs, p.Masked())
	}
	return c, hash, nil
}

// checkPattern accepts a name (printable ASCII without spaces), or with
// glob "*" or "prefix*".
func checkPattern(p string, glob bool) error {
	name := p
	if glob {
		name = strings.TrimSuffix(p, "*")
		if name == "" {
			return nil
		}
	}
	if name == "" || len(name) > discovery.MaxIDLen {
		return fmt.Errorf("%q: want 1..%d characters", p, discovery.MaxIDLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '*' {
			return fmt.Errorf("%q: byte %d is not allowed", p, i)
		}
	}
	return nil
}

// LoadCredentials reads and checks a credentials file. Errors name the
// line or the entry; unknown fields are errors (a plaintext "token" is
// refused: store its SHA-256).
func LoadCredentials(path string) (*CredentialsFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return ParseCredentials(b)
}

// ParseCredentials parses a credentials file's contents (see
// LoadCredentials).
func ParseCredentials(b []byte) (*CredentialsFile, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if err := checkKeys(&root); err != nil {
		return nil, err
	}
	f := &CredentialsFile{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("credentials: %w", yamlerr.Describe(b, reflect.TypeOf(f), err))
	}
	if _, err := newCredSet("", f, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// Known keys of the credentials file, by the kind of mapping they are in.
var (
	fileKeys  = []string{"agents", "peers", "readers", "apps", "default_app"}
	entryKeys = []string{"name", "token_sha256", "tls_san", "apps", "node_prefixes", "cidrs"}
	limitKeys = []string{"max_capacity", "max_nodes"}
)

// checkKeys reports the first unknown key with its line, in words (not Go
// type names).
func checkKeys(root *yaml.Node) error {
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil // empty file
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("credentials: line %d: want a mapping of agents, peers, readers, apps and default_app", doc.Line)
	}
	check := func(m *yaml.Node, where string, known []string) error {
		if m.Kind != yaml.MappingNode {
			return nil // the decoder reports the wrong shape
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if !slices.Contains(known, k.Value) {
				hint := ""
				if k.Value == "token" {
					hint = " (store the token's SHA-256 as token_sha256, so the file holds no secret)"
				}
				return fmt.Errorf("credentials: line %d: unknown field %q in %s%s", k.Line, k.Value, where, hint)
			}
		}
		return nil
	}
	if err := check(doc, "the file", fileKeys); err != nil {
		return err
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i].Value, doc.Content[i+1]
		switch k {
		case "agents", "peers", "readers":
			if v.Kind != yaml.SequenceNode {
				continue
			}
			for j, e := range v.Content {
				if err := check(e, fmt.Sprintf("%s[%d]", k, j), entryKeys); err != nil {
					return err
				}
			}
		case "apps":
			if v.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if err := check(v.Content[j+1], "apps."+v.Content[j].Value, limitKeys); err != nil {
					return err
				}
			}
		case "default_app":
			if err := check(v, "default_app", limitKeys); err != nil {
				return err
			}
		}
	}
	return nil
}

// tokenHash is a presented bearer token, hashed at once (only the hash is
// kept, so a connection's credential can be resolved again after a reload
// without holding the secret).
type tokenHash struct {
	h   [sha256.Size]byte
	set bool
}

func hashToken(tok string) tokenHash {
	if tok == "" {
		return tokenHash{}
	}
	return tokenHash{h: sha256.Sum256([]byte(tok)), set: true}
}

// peerSANs returns the names of a verified client certificate (DNS names,
// URIs, IP addresses, e-mail addresses); nil without one.
func peerSANs(st *tls.ConnectionState) []string {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := st.VerifiedChains[0][0]
	out := slices.Clone(leaf.DNSNames)
	for _, u := range leaf.URIs {
		out = append(out, u.String())
	}
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return append(out, leaf.EmailAddresses...)
}

// resolve returns the credential of a client presenting tok (hashed) and a
// certificate with sans, or why it has none (reason bad_token).
func (cs *credSet) resolve(tok tokenHash, sans []string) (*credential, *refusal) {
	if cs.open {
		return trusted, nil
	}
	if tok.set {
		c := cs.byHash[tok.h]
		if c == nil {
			return nil, refuse(discovery.ReasonBadToken, "", "unknown token")
		}
		if len(c.sans) > 0 && !slices.ContainsFunc(sans, func(s string) bool { return slices.Contains(c.sans, s) }) {
			return nil, refuse(discovery.ReasonBadToken, "", "the token of %q is bound to a TLS identity this connection does not present", c.name)
		}
		return c, nil
	}
	var found *credential
	for _, s := range sans {
		c := cs.bySAN[s]
		switch {
		case c == nil:
		case found != nil && c != found:
			return nil, refuse(discovery.ReasonBadToken, "", "the certificate's names identify both %q and %q", found.name, c.name)
		default:
			found = c
		}
	}
	if found == nil {
		if len(sans) > 0 {
			return nil, refuse(discovery.ReasonBadToken, "", "no bearer token, and no credential for this certificate's names %v", sans)
		}
		return nil, refuse(discovery.ReasonBadToken, "", "missing bearer token")
	}
	return found, nil
}

// allow refuses a credential of another role than want (roleFull passes).
func (c *credential) allow(want role, what string) *refusal {
	if c.role == roleFull || c.role == want {
		return nil
	}
	return refuse(discovery.ReasonForbidden, "", "credential %q is a %s credential; %s needs a %s credential", c.name, roleNames[c.role], what, roleNames[want])
}

// allowsApp reports whether the credential's app patterns match app.
func (c *credential) allowsApp(app string) bool {
	if c.apps == nil {
		return true
	}
	for _, p := range c.apps {
		if pre, glob := strings.CutSuffix(p, "*"); glob && strings.HasPrefix(app, pre) || p == app {
			return true
		}
	}
	return false
}

// checkApp refuses an app outside the credential's binding.
func (c *credential) checkApp(app string) *refusal {
	if c.allowsApp(app) {
		return nil
	}
	return refuse(discovery.ReasonForbidden, "app", "credential %q may not use app %q (its apps: %s)", c.name, app, strings.Join(c.apps, ", "))
}

// checkBeat refuses a heartbeat outside the credential's binding: its app,
// node id prefixes and address CIDRs.
func (c *credential) checkBeat(hb *discovery.Heartbeat) *refusal {
	if r := c.allow(roleAgent, "announcing nodes"); r != nil {
		return r
	}
	if r := c.checkApp(hb.App); r != nil {
		return r
	}
	if len(c.prefixes) > 0 && !slices.ContainsFunc(c.prefixes, func(p string) bool { return strings.HasPrefix(hb.ID, p) }) {
		return refuse(discovery.ReasonForbidden, "id", "credential %q may not announce node %q (its node id prefixes: %s)", c.name, hb.ID, strings.Join(c.prefixes, ", "))
	}
	if len(c.cidrs) > 0 {
		for proto, addr := range hb.Addresses {
			host, _, _ := net.SplitHostPort(addr)
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return refuse(discovery.ReasonForbidden, "addresses."+proto, "credential %q binds addresses to %s; %q is not an IP address", c.name, c.cidrList(), host)
			}
			ip = ip.Unmap()
			if !slices.ContainsFunc(c.cidrs, func(p netip.Prefix) bool { return p.Contains(ip) }) {
				return refuse(discovery.ReasonForbidden, "addresses."+proto, "credential %q may not announce address %s (its CIDRs: %s)", c.name, addr, c.cidrList())
			}
		}
	}
	return nil
}

func (c *credential) cidrList() string {
	s := make([]string, len(c.cidrs))
	for i, p := range c.cidrs {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// limits returns app's caps.
func (cs *credSet) limits(app string) AppLimits {
	if l, ok := cs.apps[app]; ok {
		return l
	}
	return cs.def
}
