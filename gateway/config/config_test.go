package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		{"health unknown key", hc("health_check: {intervall: 1s}"), "intervall"},
		{"outlier factor", hc("outlier: {latency_factor: 1.1}"), "routes[0].outlier.latency_factor"},
		{"outlier floor", hc("outlier: {latency_floor: 1ms}"), "routes[0].outlier.latency_floor"},
		{"outlier percent", hc("outlier: {max_ejection_percent: 101}"), "routes[0].outlier.max_ejection_percent"},
		{"outlier max time", hc("outlier: {base_ejection_time: 1m, max_ejection_time: 10s}"), "routes[0].outlier.max_ejection_time"},
		{"outlier min hosts", hc("outlier: {success_rate_min_hosts: 1}"), "routes[0].outlier.success_rate_min_hosts"},
		{"outlier stdev", hc("outlier: {success_rate_stdev_factor: -1}"), "routes[0].outlier.success_rate_stdev_factor"},
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
	if len(c.Routes) != 7 || c.Routes[2].Split == nil || c.Routes[2].Shadow == nil {
		t.Fatalf("%+v", c.Routes)
	}
}
