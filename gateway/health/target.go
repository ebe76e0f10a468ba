package health

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Default health paths by route kind (config.HealthCheckConfig, rule 5).
const (
	pathOpenAI = "/health"          // vLLM, SGLang, TGI, trtllm-serve
	pathKServe = "/v2/health/ready" // KServe v2, Triton
	pathRay    = "/-/healthz"       // Ray Serve's proxy
)

// rules is a route's probe rules: config.HealthCheckConfig's order, with
// what does not depend on the node worked out once.
type rules struct {
	path    string // health_check.path, else health_path; "" when neither
	pathSrc string
	engine  string // health_check.engine
	kind    string // the route kind's path (rule 5)
	port    int    // health_check.port
	scheme  string // health_check.scheme
	roots   *x509.CertPool
}

func newRules(rc *config.RouteConfig) (rules, error) {
	hc := &rc.HealthCheck
	r := rules{engine: hc.Engine, port: hc.Port, scheme: hc.Scheme, kind: KindPath(&rc.Match)}
	switch {
	case hc.Path != "":
		r.path, r.pathSrc = hc.Path, "health_check.path"
	case rc.HealthPath != "":
		r.path, r.pathSrc = rc.HealthPath, "health_path"
	}
	if hc.CAFile != "" {
		pem, err := os.ReadFile(hc.CAFile)
		if err != nil {
			return r, fmt.Errorf("health_check.ca_file: %w", err)
		}
		r.roots = x509.NewCertPool()
		if !r.roots.AppendCertsFromPEM(pem) {
			return r, fmt.Errorf("health_check.ca_file %q: no PEM certificate in it", hc.CAFile)
		}
	}
	return r, nil
}

// KindPath is the health path of a route's kind when nothing else names
// one (config.HealthCheckConfig, rule 5): /v2/health/ready for a KServe v2
// route (match.path_prefix under /v2), /-/healthz for a Ray Serve route
// (match.ray_prefix), else /health.
func KindPath(m *config.MatchConfig) string {
	switch {
	case m.PathPrefix == "/v2" || strings.HasPrefix(m.PathPrefix, "/v2/"):
		return pathKServe
	case m.RayPrefix != "":
		return pathRay
	}
	return pathOpenAI
}

// BreakerPath is the path a route's half-open breaker trial GETs on the
// node's own port: the route's configured path, else its engine's, else
// its kind's.
func BreakerPath(rc *config.RouteConfig) string {
	r, _ := newRules(rc)
	if r.path != "" {
		return r.path
	}
	if spec, ok := engineSpec(r.engine); ok {
		if p := enginePath(spec); p != "" {
			return p
		}
	}
	return r.kind
}

func engineSpec(name string) (engines.Spec, bool) {
	if name == "" {
		return engines.Spec{}, false
	}
	a, err := engines.Lookup(name)
	if err != nil {
		return engines.Spec{}, false
	}
	return a.Spec(), true
}

// enginePath is the engine's readiness path, or its liveness path when
// its readiness answers 503 while merely busy (MindIE): a busy node is
// for the weights to shed, not for a health check to exclude.
func enginePath(s engines.Spec) string {
	if s.BusyOnReady503 && s.LivePath != "" {
		return s.LivePath
	}
	return s.ReadyPath
}

// target is how one node is probed. Immutable once built.
type target struct {
	addr string // host:port dialled
	tls  *tls.Config
	url  string // for logs and the admin API
	path string
	req  []byte // the request, written as is
	src  string // which rule chose the path
	none string // when not empty, the node is not probed, and why
}

// errNoAddress: the node has no HTTP address to probe.
var errNoAddress = errors.New("no HTTP address (gRPC only)")

// resolve builds node m's target by the rules.
func (r *rules) resolve(m *Member) target {
	if m.NoHTTP || m.Endpoint.Addr().HTTP == "" {
		return target{none: errNoAddress.Error()}
	}
	addr := m.Endpoint.Addr().HTTP
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return target{none: "address " + strconv.Quote(addr) + ": " + err.Error()}
	}
	t := target{path: r.path, src: r.pathSrc}
	scheme := "http"
	if t.path == "" {
		for _, e := range []struct{ name, src string }{{r.engine, "health_check.engine"}, {m.Engine, "node engine"}} {
			spec, ok := engineSpec(e.name)
			if !ok || enginePath(spec) == "" {
				continue
			}
			t.path, t.src = enginePath(spec), e.src+" "+e.name
			if spec.HealthPort != 0 {
				port = strconv.Itoa(spec.HealthPort)
			}
			if spec.TLS {
				scheme = "https"
			}
			break
		}
	}
	if t.path == "" {
		t.path, t.src = r.kind, "route kind"
	}
	if r.port != 0 {
		port = strconv.Itoa(r.port)
	}
	// A node the route speaks TLS to is probed over TLS with the route's
	// settings (CA, client certificate, server name), unless
	// health_check.scheme says otherwise.
	var nodeTLS *tls.Config
	if m.Node != nil {
		nodeTLS = m.Node.TLSConfig()
	}
	if nodeTLS != nil {
		scheme = "https"
	}
	if r.scheme != "" {
		scheme = r.scheme
	}
	t.addr = net.JoinHostPort(host, port)
	if scheme == "https" {
		t.tls = &tls.Config{ServerName: host, RootCAs: r.roots, MinVersion: tls.VersionTLS12}
		if nodeTLS != nil {
			t.tls = nodeTLS.Clone()
			if r.roots != nil {
				t.tls.RootCAs = r.roots
			}
		}
	}
	t.url = scheme + "://" + t.addr + t.path
	t.req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: switchyard-health\r\nAccept: */*\r\nConnection: close\r\n\r\n", t.path, t.addr)
	return t
}
