package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery/ray"
	"github.com/switchyard-dev/switchyard/gateway/flow"
)

const fullYAML = `
listen:
  client: 127.0.0.1:8080
  admin: 127.0.0.1:9090
limits:
  max_concurrent: 500
  max_per_node: 64
  max_header_bytes: 8192
  max_body_bytes: 1048576
  read_timeout: 10s
discovery:
  servers: [127.0.0.1:7100]
  token: secret
telemetry:
  trace_ratio: 0.1
routes:
  - name: llama
    match: {models: [llama-3-8b, llama-3-70b]}
    policy: p2c
    timeouts: {connect: 1s, first_byte: 30s, idle: 10s, total: 2m}
    retries: {attempts: 1, budget_percent: 10}
    health_path: /health
    split:
      variants:
        - {name: a, target: resnet, weight: 90}
        - {name: b, target: summarize, weight: 10}
      key: {header: X-User}
      override_header: X-Variant
    shadow: {target: default, sample_rate: 5}
  - name: resnet
    match: {models: [resnet], path_prefix: /v2/}
    nodes:
      - http://10.0.0.1:8000
      - {id: r2, http: 10.0.0.2:8000, grpc: 10.0.0.2:8001, weight: 2}
  - name: summarize
    match: {ray_prefix: /summarize}
    app: ray-summarize
  - name: default
    match: {models: ["*"]}
    nodes: [10.0.0.9:8000]
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.Routes[1]
	if len(r.Nodes) != 2 || r.Nodes[0].HTTP != "10.0.0.1:8000" || r.Nodes[0].ID != "10.0.0.1:8000" ||
		r.Nodes[1].GRPC != "10.0.0.2:8001" || r.Nodes[1].Weight != 2 || r.Policy != "static-swrr" {
		t.Fatalf("nodes %+v policy %s", r.Nodes, r.Policy)
	}
	if c.Routes[0].Policy != "p2c" || c.Routes[0].Timeouts.FirstByte != 30*time.Second || len(c.Routes[0].Split.Variants) != 2 || c.Routes[0].Shadow.Target != "default" {
		t.Fatalf("route 0 %+v", c.Routes[0])
	}
	if c.Routes[2].Policy != "dynamic-swrr" || c.Routes[2].App != "ray-summarize" {
		t.Fatalf("route 2 %+v", c.Routes[2])
	}
	if c.Limits.MaxConcurrent != 500 || c.Limits.RetryAfter != time.Second || c.WeightPeriod != 3*time.Second {
		t.Fatalf("limits %+v", c.Limits)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "routes:\n  - name: a\n    matchh: {}\n", "matchh"},
		{"unknown nested field", "limits:\n  max_conns: 5\n", "max_conns"},
		{"unknown node field", "routes:\n  - match: {models: [a]}\n    nodes: [{http: 'a:1', wieght: 2}]\n", "wieght"},
		{"bad node url", "routes:\n  - match: {models: [a]}\n    nodes: ['ftp://a:1']\n", "scheme"},
		{"no routes", "listen: {client: '127.0.0.1:1'}\n", "routes"},
		{"no match", "routes:\n  - name: a\n    nodes: ['a:1']\n", "routes[0].match"},
		{"duplicate model", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n  - name: b\n    match: {models: [a]}\n    nodes: ['a:1']\n", "already routed"},
		{"duplicate adapter", "routes:\n  - match: {models: [a], adapters: [x]}\n    nodes: ['a:1']\n  - name: b\n    match: {models: [x]}\n    nodes: ['a:1']\n", "already routed"},
		{"adapter also a model", "routes:\n  - match: {models: [a], adapters: [a]}\n    nodes: ['a:1']\n", "also in match.models"},
		{"adapter star inside", "routes:\n  - match: {models: [a], adapters: ['x*y']}\n    nodes: ['a:1']\n", "routes[0].match.adapters"},
		{"adapter star alone", "routes:\n  - match: {models: [a], adapters: ['*']}\n    nodes: ['a:1']\n", "routes[0].match.adapters"},
		{"adapters on the * route", "routes:\n  - match: {models: ['*'], adapters: [x]}\n    nodes: ['a:1']\n", "routes[0].match.adapters"},
		{"bad policy", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    policy: fastest\n", "routes[0].policy"},
		{"needs discovery", "routes:\n  - match: {models: [a]}\n", "discovery.servers"},
		{"bad stream", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    stream: sometimes\n", "routes[0].stream"},
		{"bad limit", "limits: {max_header_bytes: 10}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "limits.max_header_bytes"},
		{"star not alone", "routes:\n  - match: {models: ['*'], host: x}\n    nodes: ['a:1']\n", "only condition"},
		{"bad duration", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    timeouts: {total: soon}\n", "soon"},
		{"stream usage", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    stream_usage: maybe\n", "routes[0].stream_usage"},
		{"keepalive", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    stream_keepalive: 10ms\n", "routes[0].stream_keepalive"},
		{"upstream model", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    upstream_model: 'x\"y'\n", "routes[0].upstream_model"},
		{"fallback target", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    fallback: {target: nope}\n", "routes[0].fallback.target"},
		{"fallback self", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    fallback: {target: a}\n", "the route itself"},
		{"fallback on", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n  - match: {models: [b]}\n    nodes: ['a:1']\n    fallback: {target: a, on: [4xx]}\n", "routes[1].fallback.on[0]"},
		{"pprof without token", "admin: {pprof: true}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "admin.pprof"},
		{"tls half", "listen: {tls_cert: a.pem}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "tls_key"},
		{"trace ratio", "telemetry: {trace_ratio: 2}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "trace_ratio"},
		{"otlp scheme", "telemetry: {otlp_endpoint: 'grpc://127.0.0.1:4317'}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "telemetry.otlp_endpoint"},
		{"otlp no host", "telemetry: {otlp_endpoint: 'http://'}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "telemetry.otlp_endpoint"},
		{"otlp bare host", "telemetry: {otlp_endpoint: '127.0.0.1:4318'}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "telemetry.otlp_endpoint"},
		{"otlp query", "telemetry: {otlp_endpoint: 'http://c:4318/?x=1'}\nroutes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n", "telemetry.otlp_endpoint"},
		{"empty", "", "empty"},
		{"health engine", hc("health_check: {engine: vllmx}"), "routes[0].health_check.engine"},
		{"health path", hc("health_check: {path: health}"), "routes[0].health_check.path"},
		{"health scheme", hc("health_check: {scheme: ftp}"), "routes[0].health_check.scheme"},
		{"health port", hc("health_check: {port: 70000}"), "routes[0].health_check.port"},
		{"health interval", hc("health_check: {interval: 1ms}"), "routes[0].health_check.interval"},
		{"health timeout", hc("health_check: {interval: 1s, timeout: 2s}"), "routes[0].health_check.timeout"},
		{"health unhealthy_after", hc("health_check: {unhealthy_after: -1}"), "routes[0].health_check.unhealthy_after"},
		{"health healthy_after", hc("health_check: {healthy_after: 101}"), "routes[0].health_check.healthy_after"},
		{"outlier failure floor", "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    outlier: {success_rate_min_failure_percent: 200}\n", "routes[0].outlier.success_rate_min_failure_percent"},
		{"health unknown key", hc("health_check: {intervall: 1s}"), "intervall"},
		{"outlier factor", hc("outlier: {latency_factor: 1.1}"), "routes[0].outlier.latency_factor"},
		{"outlier floor", hc("outlier: {latency_floor: 1ms}"), "routes[0].outlier.latency_floor"},
		{"outlier percent", hc("outlier: {max_ejection_percent: 101}"), "routes[0].outlier.max_ejection_percent"},
		{"outlier max time", hc("outlier: {base_ejection_time: 1m, max_ejection_time: 10s}"), "routes[0].outlier.max_ejection_time"},
		{"outlier min hosts", hc("outlier: {success_rate_min_hosts: 1}"), "routes[0].outlier.success_rate_min_hosts"},
		{"outlier stdev", hc("outlier: {success_rate_stdev_factor: -1}"), "routes[0].outlier.success_rate_stdev_factor"},
		{"queue timeout", hc("queue: {timeout: -1s}"), "routes[0].queue.timeout"},
		{"queue batch_timeout", hc("queue: {batch_timeout: -1s}"), "routes[0].queue.batch_timeout"},
		{"queue batch_timeout unit", hc("queue: {batch_timeout: 5}"), "batch_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				c.ApplyDefaults()
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// hc is a one-route config with extra route keys.
func hc(keys string) string {
	return "routes:\n  - match: {models: [a]}\n    nodes: ['a:1']\n    " + keys + "\n"
}

// TestHealthDefaults: health checks and outlier detection are on with
// the documented defaults; the timeout follows a configured interval.
func TestHealthDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(hc("health_check: {interval: 4s, engine: mindie}")))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	h, o := c.Routes[0].HealthCheck, c.Routes[0].Outlier
	if h.Disable || h.Interval != 4*time.Second || h.Timeout != 2*time.Second || h.UnhealthyAfter != 2 || h.HealthyAfter != 1 || h.Engine != "mindie" {
		t.Fatalf("health_check %+v", h)
	}
	if o.Disable || o.Interval != time.Second || o.LatencyFactor != 3 || o.LatencyFloor != 2*time.Second || o.MaxEjectionPercent != 50 ||
		o.BaseEjectionTime != 30*time.Second || o.MaxEjectionTime != 300*time.Second || o.SuccessRateMinHosts != 5 ||
		o.SuccessRateRequestVolume != 100 || o.SuccessRateStdevFactor != 1.9 {
		t.Fatalf("outlier %+v", o)
	}
	var d Config
	d.Routes = []RouteConfig{{Match: MatchConfig{Models: []string{"a"}}, Nodes: []NodeConfig{{HTTP: "a:1"}}}}
	d.ApplyDefaults()
	if d.Routes[0].HealthCheck.Interval != time.Second || d.Routes[0].HealthCheck.Timeout != 500*time.Millisecond {
		t.Fatalf("zero config: %+v", d.Routes[0].HealthCheck)
	}
}

// TestQueueDefaults: a route's queue waits 30 s for an interactive
// request and 5 min for a batch one unless configured; TimeoutFor picks by
// class.
func TestQueueDefaults(t *testing.T) {
	for _, tc := range []struct {
		yaml               string
		interactive, batch time.Duration
	}{
		{hc(""), 30 * time.Second, 5 * time.Minute},
		{hc("queue: {timeout: 2s, batch_timeout: 20m, max_queued: 64}"), 2 * time.Second, 20 * time.Minute},
	} {
		c, err := ParseConfig([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		q := &c.Routes[0].Queue
		if q.TimeoutFor(flow.Interactive) != tc.interactive || q.TimeoutFor(flow.Batch) != tc.batch {
			t.Fatalf("%q: timeouts %v %v, want %v %v", tc.yaml, q.TimeoutFor(flow.Interactive), q.TimeoutFor(flow.Batch), tc.interactive, tc.batch)
		}
	}
}

func TestQuickStart(t *testing.T) {
	c, err := QuickStart("127.0.0.1:0", "", []string{"llama=http://127.0.0.1:1,127.0.0.1:2", "*=grpc://127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 2 || len(c.Routes[0].Nodes) != 2 || c.Routes[1].Nodes[0].GRPC != "127.0.0.1:3" || c.Routes[1].Nodes[0].HTTP != "127.0.0.1:3" {
		t.Fatalf("%+v", c.Routes)
	}
	for _, bad := range []string{"llama", "=http://a:1", "m=", "m=http://nohost"} {
		if _, err := QuickStart("", "", []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte(sourcesYAML))
	f.Add([]byte("routes: [{match: {models: [a]}, nodes: ['a:1']}]"))
	f.Add([]byte("routes:\n  - nodes: [{id: x}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<14 {
			return
		}
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		c.ApplyDefaults()
		_ = c.Validate()
	})
}

// TestLoadConfigFile covers the file path used by --config and reload.
func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(p, []byte("routes:\n  - match: {models: [a]}\n    nodes: ['127.0.0.1:1']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil || c.Routes[0].Name != "a" {
		t.Fatalf("%v %+v", err, c)
	}
	if err := os.WriteFile(p, []byte("routes: [{bogus: 1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad file: %v", err)
	}
}

// TestExampleConfig keeps testdata/gateway.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("testdata/gateway.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 10 || c.Routes[2].Split == nil || c.Routes[2].Shadow == nil {
		t.Fatalf("%+v", c.Routes)
	}
	sources := map[string]string{}
	for _, r := range c.Routes {
		sources[r.Name] = r.Source
	}
	if sources["llama"] != SourceResource || sources["translate"] != SourceRay || sources["llama-on-k8s"] != SourceKubernetes ||
		sources["secure"] != SourceStatic || c.Ray == nil || c.Kubernetes == nil {
		t.Fatalf("sources %v", sources)
	}
	if s := c.Routes[slices.IndexFunc(c.Routes, func(r RouteConfig) bool { return r.Name == "secure" })]; s.TLS == nil || s.TLS.CertFile == "" {
		t.Fatalf("secure route %+v", s)
	}
}

const sourcesYAML = `
limits: {drain_delay: 2s}
discovery:
  servers: [127.0.0.1:7100]
  ca_file: /etc/switchyard/resource-ca.pem
  cert_file: /etc/switchyard/tls/tls.crt
  key_file: /etc/switchyard/tls/tls.key
  server_name: resource.switchyard
ray:
  dashboard: http://10.0.0.1:8265
  refresh: 500ms
  metrics_port: 8080
  route_defaults:
    timeouts: {first_byte: 60s}
    health_check: {interval: 2s}
kubernetes:
  namespace: ml
  apps:
    - {app: vllm-llama, service: vllm, port: http, engine: vllm}
routes:
  - name: from-resource
    match: {models: [a]}
  - name: from-kubernetes
    match: {models: [b]}
    app: vllm-llama
  - name: from-ray
    match: {ray_prefix: /summarize}
    app: summarize
    source: ray
  - name: tls-static
    match: {models: [c]}
    nodes: [https://10.0.0.5:8443, {http: "10.0.0.6:8443", grpc: "grpcs://10.0.0.6:8444"}]
    tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, server_name: vllm.internal}
  - name: implied-tls
    match: {models: [d]}
    nodes: [grpcs://10.0.0.7:8001]
`

// TestSourcesConfig: the ray and kubernetes blocks, the sources routes
// read (implied by the blocks, or named), the tls blocks and the drain
// delay parse, default and validate.
func TestSourcesConfig(t *testing.T) {
	c, err := ParseConfig([]byte(sourcesYAML))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"from-resource": SourceResource, "from-kubernetes": SourceKubernetes, "from-ray": SourceRay,
		"tls-static": SourceStatic, "implied-tls": SourceStatic}
	for _, r := range c.Routes {
		if r.Source != want[r.Name] {
			t.Errorf("route %s: source %q, want %q", r.Name, r.Source, want[r.Name])
		}
	}
	if c.Limits.DrainDelay != 2*time.Second || c.Ray.Refresh != 500*time.Millisecond || c.Ray.MetricsPort != 8080 || !*c.Ray.AutoRoutes ||
		c.Kubernetes.Apps[0].Engine != "vllm" || c.Discovery.ServerName != "resource.switchyard" || c.Discovery.CertFile == "" {
		t.Fatalf("parsed %+v %+v %+v %+v", c.Limits, c.Ray, c.Kubernetes, c.Discovery)
	}
	ts := c.Routes[3]
	if ts.TLS == nil || ts.TLS.ServerName != "vllm.internal" || ts.Nodes[0].Scheme != "https" || ts.Nodes[1].Scheme != "https" ||
		ts.Nodes[1].GRPC != "10.0.0.6:8444" || ts.Nodes[1].HTTP != "10.0.0.6:8443" {
		t.Fatalf("tls route %+v", ts)
	}
	if it := c.Routes[4]; it.TLS == nil || *it.TLS != (UpstreamTLS{}) {
		t.Fatalf("grpcs:// did not imply tls: %+v", it.TLS)
	}
	// Zero drain_delay takes the default; negative means none.
	var d Config
	d.ApplyDefaults()
	if d.Limits.DrainDelay != 5*time.Second {
		t.Fatalf("default drain delay %v", d.Limits.DrainDelay)
	}
}

func TestSourcesConfigErrors(t *testing.T) {
	route := "routes:\n  - match: {models: [a]}\n"
	tests := []struct{ name, yaml, want string }{
		{"source unknown", route + "    nodes: ['a:1']\n    source: consul\n", "routes[0].source"},
		{"static without nodes", "discovery: {servers: ['r:1']}\n" + route + "    source: static\n", "routes[0].source static"},
		{"nodes with a source", "discovery: {servers: ['r:1']}\n" + route + "    nodes: ['a:1']\n    source: resource\n", "routes[0].nodes"},
		{"ray without block", route + "    source: ray\n", "no ray block"},
		{"kubernetes app unknown", "kubernetes: {apps: [{app: x, service: s}]}\n" + route + "    source: kubernetes\n", "no such app in the kubernetes block"},
		{"resource without servers", "ray: {dashboard: 'http://r:8265'}\n" + route + "    source: resource\n", "discovery.servers"},
		{"ray refresh", "ray: {dashboard: 'http://r:8265', refresh: 5s}\n", "ray.refresh"},
		{"ray dashboard", "ray: {dashboard: 'ftp://r'}\n", "ray.dashboard"},
		{"ray unknown key", "ray: {dashboard: 'http://r:8265', refreshh: 1s}\n", "refreshh"},
		{"ray no auto routes, no routes", "ray: {dashboard: 'http://r:8265', auto_routes: false}\n", "routes"},
		{"ray route_defaults match", "ray: {dashboard: 'http://r:8265', route_defaults: {match: {models: [x]}}}\n", "ray.route_defaults"},
		{"ray route_defaults policy", "ray: {dashboard: 'http://r:8265', route_defaults: {policy: fastest}}\n", "ray.route_defaults.policy"},
		{"kubernetes no apps", "kubernetes: {apps: []}\n" + route + "    nodes: ['a:1']\n", "kubernetes.apps"},
		{"kubernetes bad app", "kubernetes: {apps: [{app: x}]}\n" + route + "    nodes: ['a:1']\n", "kubernetes.apps[0]"},
		{"tls half pair", route + "    nodes: ['https://a:1']\n    tls: {cert_file: c.pem}\n", "routes[0].tls.cert_file"},
		{"tls insecure with ca", route + "    nodes: ['a:1']\n    tls: {insecure_skip_verify: true, ca_file: ca.pem}\n", "routes[0].tls.insecure_skip_verify"},
		{"tls with http node", route + "    nodes: ['http://a:1']\n    tls: {}\n", "routes[0].nodes[0]"},
		{"mixed tls nodes", route + "    nodes: ['https://a:1', 'http://b:1']\n", "routes[0].nodes[1]"},
		{"mixed node mapping", route + "    nodes: [{http: 'https://a:1', grpc: 'grpc://a:2'}]\n", "mixes TLS and plaintext"},
		{"grpc url in http", route + "    nodes: [{http: 'grpcs://a:1'}]\n", "is a grpc URL"},
		{"discovery half pair", "discovery: {servers: ['r:1'], key_file: k.pem}\n" + route, "discovery.cert_file"},
		{"drain delay", "limits: {drain_delay: 1h}\n" + route + "    nodes: ['a:1']\n", "limits.drain_delay"},
		{"negative write timeout", "limits: {write_timeout: -1s}\n" + route + "    nodes: ['a:1']\n", "limits.write_timeout"},
		{"negative idle timeout", "limits: {idle_timeout: -5s}\n" + route + "    nodes: ['a:1']\n", "limits.idle_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				c.ApplyDefaults()
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestRayRoutes: the automatic routes of the RUNNING applications with an
// HTTP prefix, longest prefix first, from the route_defaults template;
// none for applications an explicit route reads or whose prefix one
// matches; none with auto_routes off.
func TestRayRoutes(t *testing.T) {
	c, err := ParseConfig([]byte(`
ray:
  dashboard: http://r:8265
  route_defaults: {timeouts: {first_byte: 42s}, policy: p2c}
routes:
  - {name: explicit, match: {ray_prefix: /mine}, app: mine, source: ray}
  - {name: taken, match: {ray_prefix: /taken}, nodes: ['a:1']}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	apps := []ray.Application{
		{Name: "root", RoutePrefix: "/", HTTPRoute: true, Status: "RUNNING"},
		{Name: "llm", RoutePrefix: "/llm", HTTPRoute: true, Status: "RUNNING"},
		{Name: "llm-long", RoutePrefix: "/llm/v2", HTTPRoute: true, Status: "RUNNING"},
		{Name: "mine", RoutePrefix: "/mine", HTTPRoute: true, Status: "RUNNING"},
		{Name: "other", RoutePrefix: "/taken", HTTPRoute: true, Status: "RUNNING"},
		{Name: "deploying", RoutePrefix: "/d", HTTPRoute: true, Status: "DEPLOYING"},
		{Name: "grpc-only", HTTPRoute: false, Status: "RUNNING"},
	}
	rs := c.RayRoutes(apps, nil)
	var got []string
	for _, r := range rs {
		got = append(got, r.Name+"="+r.Match.RayPrefix)
		if r.App == "" || r.Source != SourceRay || r.Timeouts.FirstByte != 42*time.Second || r.Policy != "p2c" {
			t.Errorf("route %+v", r)
		}
	}
	if strings.Join(got, " ") != "ray/llm-long=/llm/v2 ray/llm=/llm ray/root=/" {
		t.Fatalf("automatic routes %v", got)
	}
	// A routed application keeps its route while it redeploys, not when
	// it is deleted or its prefix changes.
	routed := map[string]string{"deploying": "/d", "llm": "/llm", "root": "/"}
	later := []ray.Application{
		{Name: "deploying", RoutePrefix: "/d", HTTPRoute: true, Status: "DEPLOYING"},
		{Name: "llm", RoutePrefix: "/llm", HTTPRoute: true, Status: "DELETING"},
		{Name: "root", RoutePrefix: "/new", HTTPRoute: true, Status: "UNHEALTHY"},
	}
	if rs := c.RayRoutes(later, routed); len(rs) != 1 || rs[0].Name != "ray/deploying" {
		t.Fatalf("later routes %+v", rs)
	}
	all := *c
	all.Routes = append(append([]RouteConfig{}, c.Routes...), rs...)
	all.ApplyDefaults()
	if err := all.Validate(); err != nil {
		t.Fatalf("with the automatic routes: %v", err)
	}
	off := false
	c.Ray.AutoRoutes = &off
	if rs := c.RayRoutes(apps, nil); len(rs) != 0 {
		t.Fatalf("auto_routes false: %v", rs)
	}
}

func TestParseNodeURLSchemes(t *testing.T) {
	tests := []struct {
		in             string
		http, grpc, sc string
	}{
		{"10.0.0.1:80", "10.0.0.1:80", "", ""},
		{"http://10.0.0.1:80", "10.0.0.1:80", "", "http"},
		{"https://10.0.0.1:443", "10.0.0.1:443", "", "https"},
		{"grpc://10.0.0.1:81", "", "10.0.0.1:81", "http"},
		{"h2c://10.0.0.1:81", "", "10.0.0.1:81", "http"},
		{"grpcs://10.0.0.1:81", "", "10.0.0.1:81", "https"},
	}
	for _, tc := range tests {
		n, err := ParseNodeURL(tc.in)
		if err != nil || n.HTTP != tc.http || n.GRPC != tc.grpc || n.Scheme != tc.sc {
			t.Errorf("%s: %+v %v", tc.in, n, err)
		}
	}
	for _, bad := range []string{"ftp://a:1", "https://a", "https://user@a:1", "https://a:1/path", "https://a:1?x=1"} {
		if _, err := ParseNodeURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
