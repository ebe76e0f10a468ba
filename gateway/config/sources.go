package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/switchyard-dev/switchyard/discovery/kubernetes"
	"github.com/switchyard-dev/switchyard/discovery/ray"
)

// Node sources of a route (RouteConfig.Source).
const (
	// SourceStatic: the route's own nodes list.
	SourceStatic = "static"
	// SourceResource: the Resource tier (the discovery block).
	SourceResource = "resource"
	// SourceKubernetes: an app of the kubernetes block.
	SourceKubernetes = "kubernetes"
	// SourceRay: an application of the ray block's dashboard.
	SourceRay = "ray"
)

// RayConfig is the Ray dashboard source (the `ray:` block): the fields of
// discovery/ray's Config (dashboard, refresh, timeout, token_header,
// token_env, metrics_port, accelerators), plus how the gateway routes the
// cluster's Serve applications.
type RayConfig struct {
	ray.Config `yaml:",inline"`
	// AutoRoutes gives every RUNNING Serve application with an HTTP route
	// prefix a route of its own: named "ray/APP", matching
	// match.ray_prefix: its route_prefix, fed by the dashboard. The
	// routes come and go with the applications (a change of the
	// application set rebuilds the routing state as a reload would,
	// carrying unchanged routes over). A routed application keeps its
	// route while it redeploys or is unhealthy (DEPLOYING, UNHEALTHY,
	// DEPLOY_FAILED: its RUNNING replicas still serve); it loses it when
	// it is DELETING, NOT_STARTED, gone, or its prefix changes. An application that an explicit
	// route reads (source: ray, app: APP), or whose prefix an explicit
	// route matches, gets none. Automatic routes are tried after the
	// explicit ones, longest prefix first (as Ray's proxy matches); a
	// "/" prefix takes every request no other route takes. Default true.
	AutoRoutes *bool `yaml:"auto_routes"`
	// RouteDefaults is the template of the automatic routes: policy,
	// timeouts, retries, breaker, health_path, health_check, outlier,
	// stream, hash_header, allow_paths and tls. Name, match, app, source,
	// nodes, split and shadow are the gateway's. Default: the defaults of
	// any route.
	RouteDefaults *RouteConfig `yaml:"route_defaults"`
}

// autoRoutes reports whether the ray block routes applications itself.
func (r *RayConfig) autoRoutes() bool {
	return r != nil && (r.AutoRoutes == nil || *r.AutoRoutes)
}

// RayRoutePrefix is the name prefix of automatic Ray routes.
const RayRoutePrefix = "ray/"

// RayRoutes returns the automatic routes of apps (see
// RayConfig.AutoRoutes), defaults not applied, in matching order:
// longest route prefix first, then by name. routed holds the
// applications that have an automatic route now, by name, with its
// prefix. It returns none without a ray block or with auto_routes off.
func (c *Config) RayRoutes(apps []ray.Application, routed map[string]string) []RouteConfig {
	if !c.Ray.autoRoutes() {
		return nil
	}
	names := map[string]bool{}
	apped := map[string]bool{}
	prefixes := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		names[r.Name] = true
		if r.Source == SourceRay {
			apped[r.App] = true
		}
		if p := r.Match.RayPrefix; p != "" {
			prefixes[p] = true
		}
	}
	var out []RouteConfig
	for _, a := range apps {
		if !autoRoutable(a, routed) || !strings.HasPrefix(a.RoutePrefix, "/") || apped[a.Name] || prefixes[a.RoutePrefix] || names[RayRoutePrefix+a.Name] {
			continue
		}
		var rc RouteConfig
		if d := c.Ray.RouteDefaults; d != nil {
			rc = *d
		}
		rc.Name, rc.App, rc.Source = RayRoutePrefix+a.Name, a.Name, SourceRay
		rc.Match = MatchConfig{RayPrefix: a.RoutePrefix}
		rc.Nodes, rc.Split, rc.Shadow = nil, nil, nil
		out = append(out, rc)
	}
	sort.SliceStable(out, func(i, j int) bool {
		pi, pj := out[i].Match.RayPrefix, out[j].Match.RayPrefix
		if len(pi) != len(pj) {
			return len(pi) > len(pj)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// autoRoutable reports whether a gets (or keeps) an automatic route:
// RUNNING with an HTTP prefix; or routed already with the same prefix and
// redeploying, unhealthy or failed to deploy (its RUNNING replicas still
// serve: a rolling upgrade must not take its route away).
func autoRoutable(a ray.Application, routed map[string]string) bool {
	if a.Routable() {
		return true
	}
	if p, ok := routed[a.Name]; !ok || p != a.RoutePrefix || !a.HTTPRoute {
		return false
	}
	switch a.Status {
	case "DEPLOYING", "UNHEALTHY", "DEPLOY_FAILED":
		return true
	}
	return false
}

// UpstreamTLS is how the gateway speaks TLS to a route's nodes (the
// route's `tls:` block). Supported: server verification against the
// system roots or a CA bundle, a client certificate for mTLS (re-read
// when its files change), the verified server name, and, for tests
// only, no verification. TLS 1.2 at least.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the CAs that sign the nodes'
	// certificates. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's PEM client certificate and
	// key, presented to nodes that ask for one (mTLS); both or neither.
	// They are re-read when their size or modification time changes; a
	// rotation half written keeps the last good pair.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in every node's certificate.
	// Default: the node's host (a name, or an IP address checked against
	// the certificate's IP SANs).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate: for tests and
	// throw-away setups only (the gateway logs a warning). Default off.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (t *UpstreamTLS) validate(at string) error {
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return cfgErr("%s.cert_file and %s.key_file: set both or neither", at, at)
	case t.InsecureSkipVerify && (t.CAFile != "" || t.ServerName != ""):
		return cfgErr("%s.insecure_skip_verify: verifies nothing, so ca_file and server_name would be ignored; drop one", at)
	case strings.ContainsAny(t.ServerName, " /:"):
		return cfgErr("%s.server_name %q: want a host name", at, t.ServerName)
	}
	return nil
}

// defaultSource is RouteConfig.Source's default for r (App defaulted).
func (c *Config) defaultSource(r *RouteConfig) string {
	switch {
	case len(r.Nodes) > 0:
		return SourceStatic
	case c.Kubernetes != nil && slices.ContainsFunc(c.Kubernetes.Apps, func(a kubernetes.AppConfig) bool { return a.App == r.App }):
		return SourceKubernetes
	case c.Discovery != nil:
		return SourceResource
	case c.Ray != nil:
		return SourceRay
	}
	return ""
}

// validateSource checks a route's node source and TLS against the
// source blocks.
func (c *Config) validateSource(r *RouteConfig, at string) error {
	switch r.Source {
	case SourceStatic:
		if len(r.Nodes) == 0 {
			return cfgErr("%s.source static: the route lists no nodes", at)
		}
	case SourceResource, SourceKubernetes, SourceRay:
		if len(r.Nodes) > 0 {
			return cfgErr("%s.nodes: a route with nodes is static, not source %s", at, r.Source)
		}
	case "":
		return cfgErr("discovery.servers: required because %s (%q) has no static nodes (or set a kubernetes or ray block)", at, r.Name)
	default:
		return cfgErr("%s.source %q: want static, resource, kubernetes or ray", at, r.Source)
	}
	switch r.Source {
	case SourceResource:
		if c.Discovery == nil || len(c.Discovery.Servers) == 0 {
			return cfgErr("discovery.servers: required because %s (%q) reads the Resource tier", at, r.Name)
		}
	case SourceKubernetes:
		if c.Kubernetes == nil || !slices.ContainsFunc(c.Kubernetes.Apps, func(a kubernetes.AppConfig) bool { return a.App == r.App }) {
			return cfgErr("%s.app %q: no such app in the kubernetes block (kubernetes.apps)", at, r.App)
		}
	case SourceRay:
		if c.Ray == nil {
			return cfgErr("%s.source ray: there is no ray block", at)
		}
	}
	if r.TLS != nil {
		if err := r.TLS.validate(at + ".tls"); err != nil {
			return err
		}
		for j, n := range r.Nodes {
			if n.Scheme == "http" {
				return cfgErr("%s.nodes[%d]: a plaintext URL in a route that speaks TLS (tls, or https:// nodes): use https:// or grpcs://", at, j)
			}
		}
	}
	return nil
}

// validateSources checks the source blocks themselves.
func (c *Config) validateSources() error {
	if d := c.Discovery; d != nil {
		for i, s := range d.Servers {
			if err := validAddr(fmt.Sprintf("discovery.servers[%d]", i), s); err != nil {
				return err
			}
		}
		if (d.CertFile == "") != (d.KeyFile == "") {
			return cfgErr("discovery.cert_file and discovery.key_file: set both or neither")
		}
	}
	if r := c.Ray; r != nil {
		rc := r.Config // Validate applies defaults: work on a copy
		if err := rc.Validate(); err != nil {
			return cfgErr("%v", err)
		}
		if d := r.RouteDefaults; d != nil {
			if d.Name != "" || d.App != "" || d.Source != "" || len(d.Nodes) > 0 || d.Split != nil || d.Shadow != nil ||
				len(d.Match.Models) > 0 || d.Match.Host != "" || d.Match.PathPrefix != "" || d.Match.RayPrefix != "" || len(d.Match.Headers) > 0 {
				return cfgErr("ray.route_defaults: name, match, app, source, nodes, split and shadow are set by the gateway")
			}
			probe := Config{Routes: []RouteConfig{*d}, Ray: &RayConfig{Config: r.Config}}
			probe.Routes[0].Name, probe.Routes[0].Match.RayPrefix = RayRoutePrefix+"app", "/app"
			probe.ApplyDefaults()
			rd := &probe.Routes[0]
			if err := rd.validateBehaviour("ray.route_defaults"); err != nil {
				return err
			}
			if rd.TLS != nil {
				if err := rd.TLS.validate("ray.route_defaults.tls"); err != nil {
					return err
				}
			}
		}
	}
	if k := c.Kubernetes; k != nil {
		kc := *k // ApplyDefaults changes the apps: work on a copy
		kc.Apps = slices.Clone(k.Apps)
		kc.Logger = nil
		if kc.Namespace == "" {
			kc.Namespace = "default" // the pod's namespace at run time; no file read here
		}
		kc.ApplyDefaults()
		if err := kc.Validate(); err != nil {
			return cfgErr("%v", err)
		}
	}
	return nil
}
