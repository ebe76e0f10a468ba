package health

import (
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// TestTargetRules: the probed URL follows config.HealthCheckConfig's
// rules, in their order.
func TestTargetRules(t *testing.T) {
	const node = "10.0.0.1:8000"
	for _, tc := range []struct {
		name   string
		edit   func(*config.RouteConfig)
		engine string // reported by the node
		noHTTP bool
		url    string
		rule   string
		none   bool
	}{
		{name: "default: the OpenAI kind", url: "http://10.0.0.1:8000/health", rule: "route kind"},
		{name: "KServe v2 route", edit: func(r *config.RouteConfig) { r.Match.PathPrefix = "/v2/" }, url: "http://10.0.0.1:8000/v2/health/ready", rule: "route kind"},
		{name: "Ray Serve route", edit: func(r *config.RouteConfig) { r.Match.RayPrefix = "/summarize" }, url: "http://10.0.0.1:8000/-/healthz", rule: "route kind"},
		{name: "node reports triton", engine: "triton", url: "http://10.0.0.1:8000/v2/health/ready", rule: "node engine triton"},
		{name: "node reports an unknown engine", engine: "nonesuch", url: "http://10.0.0.1:8000/health", rule: "route kind"},
		{name: "engine mindie: management port, https, liveness", edit: func(r *config.RouteConfig) { r.HealthCheck.Engine = "mindie" },
			url: "https://10.0.0.1:1026/v2/health/live", rule: "health_check.engine mindie"},
		{name: "configured engine before the node's", edit: func(r *config.RouteConfig) { r.HealthCheck.Engine = "sglang" }, engine: "triton",
			url: "http://10.0.0.1:8000/health", rule: "health_check.engine sglang"},
		{name: "health_path before the engine", edit: func(r *config.RouteConfig) { r.HealthPath = "/ping"; r.HealthCheck.Engine = "mindie" },
			url: "http://10.0.0.1:8000/ping", rule: "health_path"},
		{name: "health_check.path first", edit: func(r *config.RouteConfig) { r.HealthPath = "/ping"; r.HealthCheck.Path = "/live" },
			url: "http://10.0.0.1:8000/live", rule: "health_check.path"},
		{name: "port and scheme override", edit: func(r *config.RouteConfig) { r.HealthCheck.Port = 9000; r.HealthCheck.Scheme = "https" },
			url: "https://10.0.0.1:9000/health", rule: "route kind"},
		{name: "gRPC only", noHTTP: true, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := testRoute(node)
			if tc.edit != nil {
				tc.edit(&rc)
			}
			r, err := newRules(&rc)
			if err != nil {
				t.Fatal(err)
			}
			tg := r.resolve(member(t, node, tc.engine, tc.noHTTP))
			if tc.none {
				if tg.none == "" {
					t.Fatalf("probed %s, want not probed", tg.url)
				}
				return
			}
			if tg.url != tc.url || tg.src != tc.rule {
				t.Fatalf("%s (%s), want %s (%s)", tg.url, tg.src, tc.url, tc.rule)
			}
		})
	}
}

// TestBreakerPath: the half-open trial's path follows the same rules on
// the node's own port.
func TestBreakerPath(t *testing.T) {
	rc := testRoute("10.0.0.1:8000")
	if p := BreakerPath(&rc); p != "/health" {
		t.Errorf("default: %q", p)
	}
	rc.HealthCheck.Engine = "triton"
	if p := BreakerPath(&rc); p != "/v2/health/ready" {
		t.Errorf("triton: %q", p)
	}
	rc.HealthPath = "/ping"
	if p := BreakerPath(&rc); p != "/ping" {
		t.Errorf("health_path: %q", p)
	}
}
